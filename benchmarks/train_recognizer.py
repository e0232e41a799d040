"""Benchmark: train a recognizer as a config says for a fixed time budget, then report train / val / test CER
of the best (by validation) checkpoint, and CER on further evaluation sets.

    python benchmarks/train_recognizer.py --config configs/hooker-htr-jand-fast.yaml --budget-min 70 \
        --out runs/bench-htr-jand
    python benchmarks/train_recognizer.py --config configs/default-model.yaml --budget-min 120 \
        --out runs/default-model --eval runs/data/synth-hand:test --eval runs/data/synth-printed:test

Writes OUT/results.json and OUT/results.md (the table for docs/RESULTS.md) next to the run's metrics.jsonl
and curves.png. Re-running with --resume continues a killed run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from htrlab.evaluate.evaluator import evaluate_splits, format_table
from htrlab.models.checkpoint import load_checkpoint
from htrlab.train.loop import load_run_config, train


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/hooker-htr-jand-fast.yaml")
    ap.add_argument("--budget-min", type=float, default=70.0, help="training time budget in minutes")
    ap.add_argument("--out", default="runs/bench-htr-jand")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--eval-only", action="store_true", help="skip training; evaluate OUT/best.safetensors")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument(
        "--splits",
        default="train,val,test",
        help="splits of the training dataset to score (autoregressive models decode slowly on a CPU)",
    )
    ap.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="DATASET:SPLIT",
        help="a further evaluation set (repeatable), e.g. runs/data/synth-printed:test",
    )
    args = ap.parse_args()
    overrides = [
        f"train.out_dir={args.out}",
        f"train.time_budget_min={args.budget_min}",
        f"train.threads={args.threads}",
        *args.set,
    ]
    cfg = load_run_config(args.config, overrides)
    t0 = time.time()
    if args.eval_only:
        done = Path(args.out) / "summary.json"
        summary = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else {}
    else:
        summary = train(cfg, resume=args.resume)
    loaded = load_checkpoint(Path(args.out) / "best.safetensors")
    splits = [s for s in args.splits.split(",") if s]
    results = evaluate_splits(loaded, cfg.data.dataset, splits, on_error=cfg.data.on_error)
    for spec in args.eval:
        dataset, _, split = spec.rpartition(":")
        for r in evaluate_splits(loaded, dataset, [split], on_error="skip"):
            r.split = f"{Path(dataset).name}:{split}"
            results.append(r)
    machine = (
        f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, torch {torch.__version__}"
    )
    out = {
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine.strip(),
        "threads": args.threads,
        "budget_min": args.budget_min,
        "train_summary": summary,
        "checkpoint_step": loaded.meta.training.get("step"),
        "results": [r.row() for r in results],
        "wall_s": round(time.time() - t0, 1),
    }
    Path(args.out, "results.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    for r in results:
        Path(args.out, f"predictions-{r.split.replace(':', '-')}.jsonl").write_text(
            "".join(json.dumps(p) + "\n" for p in r.predictions), encoding="utf-8"
        )
    md = format_table(results)
    Path(args.out, "results.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
