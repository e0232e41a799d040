"""The GPU window job runs end to end on the CPU: a tiny model trained from a pack for a few seconds, scored,
timed, and brought back as JSON and a half-precision checkpoint that htrlab loads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch
from safetensors import safe_open

from htrlab.cli.main import main
from htrlab.models.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_window_job_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    from tests.conftest import make_page

    pages = tmp_path / "pages"
    pages.mkdir()
    make_page(pages, ["zebra quiz", "jolly fox", "box of 42", "a quiet day"])
    make_page(pages, ["seeds of kew", "many thanks"], name="page2")
    make_page(pages, ["kind regards", "the garden"], name="page3")
    (pages / "splits.tsv").write_text("page1\ttrain\npage2\tval\npage3\ttest\n", encoding="utf-8")
    pack = tmp_path / "p.htrpack"
    assert main(["data", "pack", str(pages), "-o", str(pack), "--height", "32", "--line-crop", "mixed"]) == 0
    synth = tmp_path / "synth"
    synth.mkdir()
    make_page(synth, ["quiet zebras", "seven foxes", "kind words"], name="s1")
    (synth / "splits.tsv").write_text("s1\ttrain\n", encoding="utf-8")
    extra = tmp_path / "s.htrpack"
    assert main(["data", "pack", str(synth), "-o", str(extra), "--height", "32"]) == 0
    out = tmp_path / "window"
    sets = [
        "model.name=htr-jand",
        "model.tiny=true",
        "preprocess.height=32",
        "train.batch_size=2",
        "train.threads=1",
        "train.eval_every=2",
        "train.max_steps=4",
        "train.log_every=1",
        "train.resident_data=true",
    ]
    cmd = [
        "bash",
        str(ROOT / "benchmarks" / "gpu_window.sh"),
        str(pack),
        "0.2",
        str(out),
        "--init",
        "",
        "--extra",
        f"{extra}:2",
    ]
    cmd += [x for s in sets for x in ("--set", s)]
    cmd += ["--speed-models", "default,htr-jand-student,trocr-small", "--speed-lines", "4"]
    cmd += ["--speed-batch", "2", "--tokens-per-line", "4", "--probe-steps", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "window.json").read_text())
    assert report["device"] == "cpu" and report["curve"] and report["lines_per_s"] > 0
    assert report["data"]["train_lines"] == 4 * 4 + 2  # 4 lines in 4 cuts each, and two of the extra pack's
    assert set(report["scores"]) == {"val", "test"} and report["scores"]["test"]["lines"] == 2 * 4
    styles = report["scores"]["val"]["styles"]
    assert set(styles) == {"band", "outline", "box", "ink"} and all(s["lines"] == 2 for s in styles.values())
    assert set(report["speed"]) == {"trained", "default", "htr-jand-student", "trocr-small"}
    assert all(r["sentences_per_s"] > 0 and r["tokens_per_s"] > 0 for r in report["speed"].values())
    half = load_checkpoint(out / "best-fp16.safetensors")
    assert next(half.model.parameters()).dtype.is_floating_point
    with safe_open(out / "best-fp16.safetensors", "pt") as f:  # stored as float16, loaded as float32
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    assert {d for d in dtypes if d.is_floating_point} == {torch.float16}
    assert report["checkpoint"]["parts"] == ["best-fp16.safetensors"]  # small enough to come back whole
    back = [f for f in out.rglob("*") if f.is_file()]
    assert (
        len(back) <= 8 and max(f.stat().st_size for f in back) < 16 << 20
    )  # what the device tool brings back
    probe = report["dataloader_probe"]
    assert probe["steps"] == 2 and probe["train_lines_per_s"] > 0 and probe["resident_train_lines_per_s"] > 0


def test_a_checkpoint_too_big_to_bring_back_travels_in_parts(tmp_path: Path) -> None:
    import hashlib
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_window import split_file

    data = bytes(range(256)) * 41  # 10,496 bytes
    path = tmp_path / "best-fp16.safetensors"
    path.write_bytes(data)
    info = split_file(path, part_bytes=4096)
    assert info["parts"] == [f"best-fp16.safetensors.part0{k}" for k in range(3)] and not path.exists()
    assert all((tmp_path / p).stat().st_size <= 4096 for p in info["parts"])
    joined = b"".join((tmp_path / p).read_bytes() for p in sorted(info["parts"]))  # cat NAME.part* > NAME
    assert joined == data and hashlib.sha256(joined).hexdigest() == info["sha256"]
