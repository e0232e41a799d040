"""Benchmark: corrupted and hostile files through htrlab's commands. Every outcome must be a reading or a clean,
one-line error: no traceback, no hang, no crash, bounded memory.

    python benchmarks/hostile_inputs.py --cases 2000 --json runs/hostile.json

Generates ``--cases`` files from small valid ones (a line image as PNG, JPEG and TIFF; a two-page TIFF; a PDF; a
PAGE-XML and an ALTO page with their image), each damaged in one way: truncated, bits flipped, replaced by
random bytes, given another format's header, made to claim huge dimensions; XML also with entity bombs, paths
out of the dataset, coordinates of inf / 1e30 / far off the page, broken markup. Images go through ``recognize``
and ``segment``; XML pages, as a dataset folder, through ``data check`` and ``evaluate`` (bundled model).

Each command runs in a worker process (the CLI's ``main()``, as the ``htrlab`` command runs it) under a time
limit per case (``--timeout``; the worker is killed and restarted when it does not answer: a hang) and an
address-space limit (``--memory-gb``). Outcomes: ``read`` (exit 0), ``clean error`` (exit 1 or 2 and one
``error:`` line), ``traceback`` (an exception escaped, or a traceback was printed), ``hang``, ``crash`` (the
worker died), ``bad command`` (a usage error: the benchmark's own mistake, counted as a failure too). Peak memory is the largest resident size a worker reached.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

KINDS = ("png", "jpeg", "tiff", "tiff2", "pdf", "page", "alto")


# ---- the worker: runs CLI commands in-process and reports each outcome ----


def worker(memory_gb: float) -> None:
    import resource
    import signal
    import traceback

    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from htrlab.cli.main import main

    def alarm(*_: object) -> None:
        raise TimeoutError("case timed out")

    signal.signal(signal.SIGALRM, alarm)
    for raw in sys.stdin:
        case = json.loads(raw)
        err, out = io.StringIO(), io.StringIO()
        outcome, detail = "read", ""
        signal.alarm(int(case["timeout"]))
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                rc = main(case["argv"])
            text = err.getvalue()
            if "Traceback (most recent call last)" in text:
                outcome, detail = "traceback", text[-400:]
            elif "ERROR:" in out.getvalue():  # recognize --on-error skip: the file's row names its problem
                outcome, detail = "clean error", out.getvalue().split("ERROR:", 1)[1][:300].strip()
            elif "usage:" in text or "unrecognized arguments" in text:
                outcome, detail = (
                    "bad command",
                    text[-300:],
                )  # the benchmark's own mistake: counted as a failure
            elif rc != 0:
                lines = [ln for ln in text.splitlines() if "error:" in ln]
                outcome = "clean error" if lines else "traceback"
                detail = (lines[-1] if lines else text[-400:])[:300]
        except TimeoutError:
            outcome, detail = "hang", "no answer within the time limit"
        except BaseException as exc:
            outcome, detail = "traceback", "".join(traceback.format_exception(exc))[-600:]
        finally:
            signal.alarm(0)
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            json.dumps({"id": case["id"], "outcome": outcome, "detail": detail, "rss_mb": rss_kb / 1024}),
            flush=True,
        )


# ---- the files ----


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def base_files(folder: Path) -> dict[str, bytes]:
    """Small valid files of each kind (bytes), rendered here."""
    import numpy as np
    from PIL import Image, ImageDraw

    line = Image.new("L", (360, 48), 235)
    ImageDraw.Draw(line).text((8, 14), "hostile input test line", fill=20)
    page = Image.new("L", (400, 300), 235)
    d = ImageDraw.Draw(page)
    for k in range(4):
        d.text((20, 30 + 60 * k), f"line {k} of a small page", fill=20)
    out: dict[str, bytes] = {}
    for kind, im, fmt, kw in (
        ("png", line, "PNG", {}),
        ("jpeg", line, "JPEG", {"quality": 85}),
        ("tiff", line, "TIFF", {}),
        ("pdf", page, "PDF", {"resolution": 100.0}),
    ):
        buf = io.BytesIO()
        im.copy().save(buf, fmt, **kw)
        out[kind] = buf.getvalue()
    buf = io.BytesIO()
    line.copy().save(buf, "TIFF", save_all=True, append_images=[page.copy()])
    out["tiff2"] = buf.getvalue()
    lines = "".join(
        f'<TextLine id="l{k}"><Coords points="15,{25 + 60 * k} 300,{25 + 60 * k} 300,{50 + 60 * k} 15,{50 + 60 * k}"/>'
        f'<Baseline points="15,{45 + 60 * k} 300,{45 + 60 * k}"/><TextEquiv><Unicode>line {k} of a small page'
        "</Unicode></TextEquiv></TextLine>"
        for k in range(4)
    )
    out["page"] = (
        '<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/'
        'pagecontent/2013-07-15"><Page imageFilename="page.png" imageWidth="400" imageHeight="300">'
        f'<TextRegion id="r1"><Coords points="0,0 400,0 400,300 0,300"/>{lines}</TextRegion></Page></PcGts>'
    ).encode()
    out["alto"] = (
        '<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">'
        "<Description><sourceImageInformation><fileName>page.png</fileName></sourceImageInformation></Description>"
        '<Layout><Page WIDTH="400" HEIGHT="300"><PrintSpace><TextBlock>'
        + "".join(
            f'<TextLine ID="t{k}" HPOS="15" VPOS="{25 + 60 * k}" WIDTH="285" HEIGHT="25" BASELINE="{45 + 60 * k}">'
            f'<String CONTENT="line"/><SP/><String CONTENT="{k}"/></TextLine>'
            for k in range(4)
        )
        + "</TextBlock></PrintSpace></Page></Layout></alto>"
    ).encode()
    buf = io.BytesIO()
    page.save(buf, "PNG")
    (folder / "page-image.png").write_bytes(buf.getvalue())
    del np
    return out


# "billion laughs": &e12; would expand to 10^12 copies of "lol"
_BOMB = (
    b"<!DOCTYPE r ["
    + b'<!ENTITY e0 "lol">'
    + b"".join(b'<!ENTITY e%d "%s">' % (i + 1, b"&e%d;" % i * 10) for i in range(12))
    + b"]>"
)

XML_ATTACKS = (
    ("entity bomb", lambda x: x.replace(b"?>", b"?>" + _BOMB, 1).replace(b"line 0 of", b"&e12; of", 1)),
    (
        "external entity",
        lambda x: (
            b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + x.split(b"?>", 1)[1].replace(b"line 1 of", b"&x; of", 1)
        ),
    ),
    ("path out", lambda x: x.replace(b"page.png", b"../../../../../etc/passwd")),
    ("absolute path", lambda x: x.replace(b"page.png", b"/etc/hostname")),
    ("inf coordinates", lambda x: x.replace(b"300,25", b"inf,25", 1).replace(b'HPOS="15"', b'HPOS="inf"', 1)),
    (
        "huge coordinates",
        lambda x: x.replace(b"300,45", b"1e30,45", 1).replace(b'WIDTH="285"', b'WIDTH="1e30"', 1),
    ),
    (
        "off the page",
        lambda x: x.replace(b"300,45", b"900000,45", 1).replace(b'BASELINE="45"', b'BASELINE="900000"', 1),
    ),
    (
        "negative size",
        lambda x: x.replace(b'imageWidth="400"', b'imageWidth="-5"').replace(b'WIDTH="400"', b'WIDTH="-5"'),
    ),
    ("no image", lambda x: x.replace(b"page.png", b"")),
    (
        "wrong root",
        lambda x: x.replace(b"PcGts", b"html").replace(b"<alto", b"<html").replace(b"</alto", b"</html"),
    ),
)


def corrupt(kind: str, data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One damaged copy of ``data`` and what was done to it."""
    xml = kind in ("page", "alto")
    choices = ["truncate", "flip", "random", "header"] + (["xml", "xml", "markup"] if xml else ["huge"])
    how = rng.choice(choices)
    if how == "truncate":
        return how, data[: rng.randrange(0, len(data))]
    if how == "flip":
        b = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return how, bytes(b)
    if how == "random":
        return how, rng.randbytes(rng.choice([0, 1, 8, 100, 5000, 200_000]))
    if how == "header":
        heads = [
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff\xe0",
            b"II*\x00",
            b"MM\x00*",
            b"%PDF-1.7\n",
            b"<?xml ",
            b"GIF89a",
        ]
        return how, rng.choice(heads) + data[rng.randrange(0, 16) :]
    if how == "huge":
        w, h = rng.choice([(100_000, 100_000), (2**31 - 1, 1), (65_535, 65_535), (20_000, 20_000), (0, 10)])
        if kind == "png":
            ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            return how, data[:8] + ihdr + data[8 + 25 :]
        if kind == "jpeg":
            b = bytearray(data)
            i = b.find(b"\xff\xc0")
            if i > 0:
                b[i + 5 : i + 9] = struct.pack(">HH", min(h, 65_535), min(w, 65_535))
            return how, bytes(b)
        if kind == "pdf":
            return how, data.replace(b"/MediaBox [", b"/MediaBox [0 0 %d %d " % (w, h) + b"]%", 1)
        b = bytearray(data)  # TIFF: the first ImageWidth / ImageLength entries
        for tag, value in ((256, w), (257, h)):
            i = b.find(struct.pack("<HH", tag, 4)) if b[:2] == b"II" else -1
            if i > 0:
                b[i + 8 : i + 12] = struct.pack("<I", value & 0xFFFFFFFF)
        return how, bytes(b)
    if how == "xml":
        name, attack = rng.choice(XML_ATTACKS)
        return name, attack(data)
    b = bytearray(data)  # markup: characters deleted or duplicated
    for _ in range(rng.randint(1, 10)):
        i = rng.randrange(len(b))
        b[i : i + rng.randint(1, 5)] = b"" if rng.random() < 0.5 else b[i : i + 3] * 2
    return how, bytes(b)


def make_case(k: int, kind: str, base: dict[str, bytes], folder: Path, rng: random.Random) -> list[dict]:
    how, data = corrupt(kind, base[kind], rng)
    cases = []
    if kind in ("page", "alto"):
        ds = folder / f"ds{k:05d}"
        ds.mkdir()
        (ds / f"p{k}.xml").write_bytes(data)
        (ds / "page.png").write_bytes((folder / "page-image.png").read_bytes())
        (ds / "splits.tsv").write_text(f"page\tsplit\np{k}\ttest\n")
        for argv in (
            ["data", "check", str(ds), "--json"],
            ["evaluate", "default", str(ds), "--splits", "test", "--on-error", "skip"],
        ):
            cases.append({"argv": argv, "kind": kind, "how": how, "file": str(ds / f"p{k}.xml")})
    else:
        suffix = {"jpeg": ".jpg", "tiff2": ".tif", "tiff": ".tif"}.get(kind, f".{kind}")
        path = folder / f"c{k:05d}{suffix}"
        path.write_bytes(data)
        for argv in (
            ["recognize", str(path), "--on-error", "skip"],
            ["segment", str(path), "-o", str(folder / f"c{k:05d}.out.xml"), "--orientation", "0"],
        ):
            cases.append({"argv": argv, "kind": kind, "how": how, "file": str(path)})
    return cases


# ---- the parent: hands out cases, restarts workers that hang or die ----


class Worker:
    def __init__(self, memory_gb: float):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--memory-gb", str(memory_gb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"},
        )
        self.memory_gb = memory_gb

    def run(self, case: dict, grace: float) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], case["timeout"] + grace)
        line = self.proc.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        dead = self.proc.poll() is not None
        self.proc.kill()
        self.proc.wait()
        self.__init__(self.memory_gb)  # type: ignore[misc]
        return {"id": case["id"], "outcome": "crash" if dead else "hang", "detail": "", "rss_mb": 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="damaged files (each goes through two commands)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per command")
    ap.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit of a worker")
    ap.add_argument("--json", help="write every outcome and the summary here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.memory_gb)
        return 0
    rng = random.Random(args.seed)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="htrlab-hostile-") as tmp:
        folder = Path(tmp)
        base = base_files(folder)
        cases = []
        for k in range(args.cases):
            for c in make_case(k, KINDS[k % len(KINDS)], base, folder, rng):
                cases.append({**c, "id": len(cases), "timeout": args.timeout})
        w = Worker(args.memory_gb)
        results = []
        for i, case in enumerate(cases):
            r = {**case, **w.run(case, grace=30.0)}
            results.append(r)
            if r["outcome"] in ("traceback", "hang", "crash", "bad command"):
                print(
                    f"{r['outcome']}: {' '.join(case['argv'][:1])} {case['kind']} {case['how']}: {r['detail'][-200:]}",
                    file=sys.stderr,
                )
            if (i + 1) % 200 == 0:
                print(f"{i + 1}/{len(cases)} commands, {time.time() - t0:.0f} s", file=sys.stderr)
        w.proc.kill()
    counts = Counter(r["outcome"] for r in results)
    by_command = Counter(
        (r["argv"][0] if r["argv"][0] != "data" else "data check", r["outcome"]) for r in results
    )
    peak = max((r["rss_mb"] for r in results), default=0.0)
    summary = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "files": args.cases,
        "commands": len(results),
        "outcomes": dict(counts),
        "by_command": {f"{c} / {o}": n for (c, o), n in sorted(by_command.items())},
        "by_damage": {
            f"{k}": dict(Counter(r["outcome"] for r in results if r["how"] == k))
            for k in sorted({r["how"] for r in results})
        },
        "peak_rss_mb": round(peak),
        "seconds": round(time.time() - t0),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    return 0 if not (counts["traceback"] or counts["hang"] or counts["crash"] or counts["bad command"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
