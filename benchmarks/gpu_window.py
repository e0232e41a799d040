"""One GPU window: train from a pack for a few minutes, score the result, time the models, bring it all back.

    bash benchmarks/gpu_window.sh PACK MINUTES OUT [--init CKPT] [--set KEY=VALUE ...]
    python benchmarks/prepare_window.py      # here, before the window: wheels and packs; prints the call

    bash benchmarks/gpu_window.sh window/hooker-64.htrpack 5 $OUT --config configs/window-teacher.yaml --init '' \
        --extra window/synth-hand-64.htrpack --extra window/synth-printed-64.htrpack

Prepared on the CPU, run where the GPU is (the device tool carries the working tree: the pack goes in a folder
of the repository that git ignores, named in ``carry``). Steps, each timed:

1. train ``--config`` (default: the default model's recipe) on the pack for ``--minutes`` of training time,
   starting from ``--init`` (the bundled model, or the last window's checkpoint), the data resident on the GPU
   and augmented there (``train.resident_data``), bf16 where asked; the config's ``data.extra_train`` (folders
   on this machine) is replaced by the packs given with ``--extra`` (pack them with ``htrlab data pack``);
2. score the best checkpoint on the pack's val and test lines, greedy, on the machine's CPU cores, per crop
   style where the pack holds several (``htrlab data pack --line-crop mixed [--one-style-per-line]``; the full
   table of every line in every style is made back on the CPU with ``benchmarks/crop_styles.py``);
3. time reading on the device: sentences/s and tokens/s of the trained model and of ``--speed-models``
   (``default``: the bundled model; registered architectures at their real sizes with random weights:
   ``trocr-small,trocr-base,trocr-large``), in batches of ``--speed-batch`` lines of the pack's test split
   (else its last);
4. with ``--probe-steps N``: train N steps of the same recipe through CPU DataLoader workers, for the lines/s
   of the resident path against the DataLoader path on the same machine;
5. OUT/window.json (everything above, with the machine; rewritten after every step, so that what was done comes
   back if the call runs out of time) and OUT/best-fp16.safetensors (the best weights in half precision, written
   as soon as training ends; ``htrlab`` loads it like any checkpoint), cut into parts of 15 MiB when larger
   (the device tool brings back files of 16 MiB at most; ``cat best-fp16.safetensors.part* >
   best-fp16.safetensors`` joins them, window.json gives their sha256). Of the runs' folders only
   metrics.jsonl is kept, so that OUT stays within the 8 files that come back.

Tried end to end on the CPU with a tiny model in tests/test_gpu_window.py.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from run_facts import run_facts

from htrlab.bundled import default_checkpoint
from htrlab.data.batching import collate
from htrlab.data.dataset import open_dataset
from htrlab.data.preprocess import preprocess
from htrlab.data.sample import CUT_MARK
from htrlab.evaluate.evaluator import evaluate_splits
from htrlab.evaluate.speed import random_engine
from htrlab.models.base import is_seq2seq
from htrlab.models.checkpoint import load_checkpoint, save_checkpoint
from htrlab.text.metrics import count_errors
from htrlab.train.loop import load_run_config, train


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_reading(
    model: torch.nn.Module,
    cfg: Any,
    charset: Any,
    grays: list[Any],
    texts: list[str],
    device: torch.device,
    batch: int,
) -> dict[str, float]:
    """Sentences/s and tokens/s of ``model`` reading ``grays`` (preprocessed as ``cfg`` says) on ``device``,
    in batches of ``batch``, after one warm-up pass. Tokens: characters of the references for CTC models (one
    pass reads them all), the tokens an autoregressive model generated (its end token included)."""
    images = [preprocess(g, cfg) for g in grays]
    order = sorted(range(len(images)), key=lambda i: images[i].shape[1])
    batches = [order[k : k + batch] for k in range(0, len(order), batch)]
    model = model.to(device).eval()
    seq2seq = is_seq2seq(model)
    with torch.no_grad():
        for _ in range(2):  # the first pass warms up kernels and allocator
            generated = 0
            _sync(device)
            t0 = time.perf_counter()
            for idx in batches:
                b = collate([images[i] for i in idx], [texts[i] for i in idx], [str(i) for i in idx])
                if seq2seq:
                    out, _ = model.generate(b.images.to(device), charset)  # type: ignore[operator]
                    generated += sum(len(t) + 1 for t in out)
                else:
                    model(b.images.to(device), b.widths.to(device))
            _sync(device)
            seconds = time.perf_counter() - t0
    tokens = generated if seq2seq else sum(len(t) for t in texts)
    return {
        "lines": len(images),
        "seconds": seconds,
        "sentences_per_s": len(images) / seconds,
        "tokens_per_s": tokens / seconds,
    }


PART_BYTES = 15 << 20  # the device tool brings back files of at most 16 MiB (8 files in all)


def split_file(path: Path, part_bytes: int = PART_BYTES) -> dict[str, Any]:
    """Cut ``path`` into ``NAME.part00, .part01, ...`` of at most ``part_bytes`` when it is larger (the whole file
    removed); ``cat NAME.part* > NAME`` (parts in order) puts it back. Returns the part names and the sha256."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) <= part_bytes:
        return {"parts": [path.name], "sha256": digest}
    names = []
    for k in range(0, len(data), part_bytes):
        part = path.with_name(f"{path.name}.part{k // part_bytes:02d}")  # in order under a glob
        part.write_bytes(data[k : k + part_bytes])
        names.append(part.name)
    path.unlink()
    return {"parts": names, "sha256": digest}


def _save(out: Path, report: dict[str, Any]) -> None:
    (out / "window.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


def _training_lines_per_s(rows: list[dict[str, Any]], batch: int) -> float | None:
    """Lines per second of training steps alone: the batch over the median time per step of the logged
    intervals (the first left out: it holds start-up)."""
    steps = [r["s_per_step"] for r in rows if r.get("kind") == "train" and r.get("s_per_step")][1:]
    return batch / float(np.median(steps)) if steps else None


def _cer_wer(rows: list[dict[str, Any]]) -> dict[str, float]:
    counts = count_errors([r["ref"] for r in rows], [r["hyp"] for r in rows])
    return {"cer": counts.cer, "wer": counts.wer}


def _extra_entry(text: str) -> dict[str, Any]:
    """``PATH`` or ``PATH:MAX_LINES`` as a data.extra_train entry (its train split)."""
    path, _, cap = text.rpartition(":")
    if not cap.isdigit():
        return {"dataset": text, "split": "train"}
    return {"dataset": path, "split": "train", "max_lines": int(cap)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", required=True, help="the data (htrlab data pack ... -o X.htrpack)")
    ap.add_argument("--minutes", type=float, required=True, help="training time")
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="configs/default-model.yaml")
    ap.add_argument("--init", default="default", help="checkpoint to start from ('' = random weights)")
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="PATH[:MAX_LINES]",
        help="extra training data carried to the device (a pack of synthetic lines, say); replaces the config's "
        "data.extra_train, whose folders are not on the device. Repeatable; none: the pack's lines only",
    )
    ap.add_argument("--set", action="append", default=[], help="further config overrides")
    ap.add_argument("--speed-models", default="default,trocr-small,trocr-base,trocr-large")
    ap.add_argument("--speed-lines", type=int, default=512)
    ap.add_argument("--speed-batch", type=int, default=64)
    ap.add_argument(
        "--tokens-per-line",
        type=int,
        default=32,
        help="most tokens a random-weight autoregressive model writes",
    )
    ap.add_argument(
        "--probe-steps",
        type=int,
        default=0,
        help="then train this many steps through CPU DataLoader workers (train.resident_data=false), to compare "
        "lines/s with the resident path of the main run (0: no probe)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report: dict[str, Any] = {**run_facts(), "device": str(device), "args": vars(args), "steps": {}}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)

    t0 = time.perf_counter()
    overrides = [
        f"data.dataset={args.pack}",
        f"train.out_dir={out / 'run'}",
        f"train.time_budget_min={args.minutes}",
        f"model.init_from={args.init}",
        "train.progress=false",
        f"data.extra_train={json.dumps([_extra_entry(e) for e in args.extra])}",
        *args.set,
    ]
    cfg = load_run_config(args.config, overrides)
    summary = train(cfg)
    report["steps"]["train_s"] = time.perf_counter() - t0
    rows = [json.loads(x) for x in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    report["curve"] = [
        {k: r.get(k) for k in ("step", "epoch", "val_cer", "val_cer_raw", "train_cer", "elapsed_s")}
        for r in rows
        if r["kind"] == "eval"
    ]
    timed = [r for r in rows if r.get("elapsed_s")]
    if timed:  # training lines per second of the run's wall time, its validations included
        last = max(timed, key=lambda r: r["step"])
        report["lines_per_s"] = last["step"] * cfg.train.batch_size / last["elapsed_s"]
    report["train_lines_per_s"] = _training_lines_per_s(rows, cfg.train.batch_size)
    report["train_summary"] = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    best = load_checkpoint(out / "run" / "best.safetensors")
    save_checkpoint(out / "best-fp16.safetensors", copy.deepcopy(best.model).half(), best.meta)
    report["checkpoint"] = split_file(out / "best-fp16.safetensors")
    _save(out, report)  # what is done comes back even if a later step runs out of time

    t0 = time.perf_counter()
    report["data"] = {
        k: best.meta.data.get(k) for k in ("train_lines", "main_train_lines", "extra_train", "val_lines")
    }
    ds = open_dataset(args.pack)
    splits = [s for s in ("val", "test") if s in ds.splits]
    results = evaluate_splits(best, args.pack, splits, progress=False)  # on the CPU cores
    report["scores"] = {r.split: {"lines": r.lines, "cer": r.cer, "wer": r.wer} for r in results}
    for r in results:  # lines of a mixed-crop pack: scored per crop style too (ids end in ~style)
        by_style: dict[str, list[dict[str, Any]]] = {}
        for row in r.predictions:
            if CUT_MARK in row["id"]:
                by_style.setdefault(row["id"].split(CUT_MARK, 1)[1].rstrip("0123456789"), []).append(row)
        if by_style:
            report["scores"][r.split]["styles"] = {
                style: {"lines": len(rows), **_cer_wer(rows)} for style, rows in sorted(by_style.items())
            }
    report["steps"]["score_s"] = time.perf_counter() - t0
    _save(out, report)

    t0 = time.perf_counter()
    speed_split = "test" if "test" in ds.splits else ds.splits[-1]
    samples = [s for s in ds.split(speed_split) if s.text][: args.speed_lines]
    grays, texts = [s.load_image() for s in samples], [s.text for s in samples]
    speed = {
        "trained": time_reading(
            best.model, best.preprocess, best.charset, grays, texts, device, args.speed_batch
        )
    }
    for name in [m.strip() for m in args.speed_models.split(",") if m.strip()]:
        if name == "default":  # the bundled model's weights on the device (torch; its ONNX runs on CPUs)
            bundled = load_checkpoint(default_checkpoint("torch"))
            speed[name] = time_reading(
                bundled.model.float(),
                bundled.preprocess,
                bundled.charset,
                grays,
                texts,
                device,
                args.speed_batch,
            )
            del bundled
            continue
        engine = random_engine(name, args.tokens_per_line)
        speed[name] = {
            "params": engine.params,
            **time_reading(
                engine.module, engine.preprocess, engine.charset, grays, texts, device, args.speed_batch
            ),
        }
        del engine
        if device.type == "cuda":
            torch.cuda.empty_cache()
        report["speed"] = speed
        _save(out, report)
    report["steps"]["speed_s"] = time.perf_counter() - t0
    _save(out, report)

    if (
        args.probe_steps > 0
    ):  # the same recipe through CPU DataLoader workers, for the resident path's speed-up
        t0 = time.perf_counter()
        workers = min(8, len(os.sched_getaffinity(0)))
        probe = [*overrides, f"train.out_dir={out / 'probe'}", "train.resident_data=false"]
        probe += [
            f"train.workers={workers}",
            f"train.max_steps={args.probe_steps}",
            "train.time_budget_min=0",
        ]
        probe += [
            f"train.eval_every={args.probe_steps + 1}",
            f"train.log_every={max(1, args.probe_steps // 10)}",
        ]
        probe += ["model.init_from="]
        pcfg = load_run_config(args.config, probe)
        train(pcfg)
        prow = [json.loads(x) for x in (out / "probe" / "metrics.jsonl").read_text().splitlines()]
        report["dataloader_probe"] = {
            "workers": workers,
            "steps": args.probe_steps,
            "train_lines_per_s": _training_lines_per_s(prow, pcfg.train.batch_size),
            "resident_train_lines_per_s": report["train_lines_per_s"],
        }
        report["steps"]["probe_s"] = time.perf_counter() - t0
        _save(out, report)
    for d in ("run", "probe"):  # of the runs' folders only the metrics come back (8 files in all)
        for f in (out / d).glob("*") if (out / d).is_dir() else []:
            if f.name != "metrics.jsonl":
                f.unlink()
    print(json.dumps({k: report[k] for k in ("scores", "steps")}, indent=2))
    for name, row in speed.items():
        print(f"{name}: {row['sentences_per_s']:.1f} sentences/s, {row['tokens_per_s']:.0f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
