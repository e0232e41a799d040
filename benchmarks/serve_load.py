"""Benchmark: ``htrlab serve`` under N concurrent clients on loopback, against reading the same images in one
batched ``Reader`` call (what ``htrlab recognize`` does with them).

    python benchmarks/serve_load.py --clients 1,8,32 --requests 96 --json runs/serve-load.json

The server runs as its own process (``htrlab serve`` on a free port of 127.0.0.1; nothing else is contacted).
At each N, N client threads send ``--requests`` line images in all (one per request, taken in turn from
``--images``: a folder, or the bundled example lines), each level bounded by ``--max-seconds``. Reported per
level: requests/s, latency p50/p95/p99, errors (any status but 200), texts that differ from the batched
reading (the default model's output depends slightly on the lines it is batched with: it attends over padding),
and the server's resident memory before and after (after a warm-up round of every image). The reference: the
same images read in one batched call in this process, lines/s; the goal is N = 8 at 80 % of it or more.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from run_facts import run_facts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _post(url: str, name: str, data: bytes, form: dict[str, str], timeout: float) -> tuple[int, str, float]:
    """(status, text read, seconds) of one multipart upload, built by hand (the standard library has no
    multipart encoder, and a client library would be one more dependency for one benchmark)."""
    boundary = uuid.uuid4().hex
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in form.items()
    )
    head = (
        f'{fields}--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}, method="POST"
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            text = json.loads(reply.read())["text"]
            return reply.status, text, time.perf_counter() - t0
    except urllib.error.HTTPError as exc:
        return exc.code, "", time.perf_counter() - t0
    except (OSError, ValueError):
        return 0, "", time.perf_counter() - t0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def _level(
    n: int,
    url: str,
    images: list[tuple[str, bytes]],
    expected: dict[str, str],
    args: Any,
    pid: int,
    ref: float,
) -> dict[str, Any]:
    """One level: ``n`` clients sending ``args.requests`` uploads in all, within ``args.max_seconds``."""
    rss0 = _rss_mb(pid)
    lat: list[float] = []
    errors = differs = 0
    lock = threading.Lock()
    todo = iter(range(args.requests))
    stop = time.time() + args.max_seconds

    def client() -> None:
        nonlocal errors, differs
        for k in todo:
            if time.time() > stop:
                return
            name, data = images[k % len(images)]
            form = {"decoder": args.decoder, "layout": args.layout}
            status, text, secs = _post(url, name, data, form, args.max_seconds)
            with lock:
                lat.append(secs)
                errors += status != 200
                differs += status == 200 and text != expected[name]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        for f in [pool.submit(client) for _ in range(n)]:
            f.result()
    wall = time.perf_counter() - t0
    return {
        "clients": n,
        "requests": len(lat),
        "errors": errors,
        "texts_differing": differs,
        "requests_per_s": round(len(lat) / wall, 2),
        "p50_ms": round(1000 * _pct(lat, 50), 1),
        "p95_ms": round(1000 * _pct(lat, 95), 1),
        "p99_ms": round(1000 * _pct(lat, 99), 1),
        "server_rss_mb_before": round(rss0, 1),
        "server_rss_mb_after": round(_rss_mb(pid), 1),
        "share_of_batched_rate": round(len(lat) / wall / ref, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", help="a folder of line images (default: the bundled example lines)")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=96, help="requests per level, all clients together")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time bound of one level")
    ap.add_argument("--decoder", default="default", choices=["default", "greedy"])
    ap.add_argument("--layout", default="auto", choices=["auto", "line", "page"], help="as the clients ask")
    ap.add_argument("--workers", type=int, default=1, help="the server's reading threads")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the model, server and reference")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import htrlab
    from htrlab.bundled import example_images

    paths = (
        sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif"))
        if args.images
        else example_images()
    )
    images = [(p.name, p.read_bytes()) for p in paths]
    reader = htrlab.load(decoder="greedy" if args.decoder == "greedy" else "auto", threads=args.threads)
    reader.read(paths[0], layout=args.layout)  # warm up
    t0 = time.perf_counter()
    pages = reader.read([str(p) for p in paths], layout=args.layout)
    ref_secs = time.perf_counter() - t0
    expected = {p.name: page.text for p, page in zip(paths, pages if isinstance(pages, list) else [pages])}
    ref_rate = len(paths) / ref_secs
    print(f"reference: {len(paths)} images in one batched read, {ref_rate:.1f} lines/s", file=sys.stderr)

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    server = subprocess.Popen(
        [
            "htrlab",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--queue-length",
            "256",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1/read"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        # warm up: the server's first batches of each width allocate what later ones reuse
        _level(
            8,
            url,
            images,
            expected,
            argparse.Namespace(**{**vars(args), "requests": len(images)}),
            server.pid,
            ref_rate,
        )
        rows = []
        for n in [int(c) for c in args.clients.split(",")]:
            row = _level(n, url, images, expected, args, server.pid, ref_rate)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        "| clients | requests | errors | texts not as batched | requests/s | p50 ms | p95 ms | p99 ms "
        "| server RSS MB before → after | vs batched |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']} | {r['errors']} | {r['texts_differing']} | {r['requests_per_s']} | "
            f"{r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['server_rss_mb_before']} → {r['server_rss_mb_after']} | "
            f"{100 * r['share_of_batched_rate']:.0f} % |"
        )
    print(
        f"\nreference: the same {len(paths)} images in one batched read: {ref_rate:.1f} lines/s ({args.decoder})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({**run_facts(), "reference_lines_per_s": ref_rate, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
