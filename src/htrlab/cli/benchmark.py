"""``htrlab benchmark [MODELS...] --data DATASET | --images DIR --batch-sizes 1,8,32 --threads N [--json]``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from htrlab.cli.common import dumps, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark", help="speed: sentences/s, tokens/s, latency, memory per model and batch size"
    )
    p.add_argument(
        "models",
        nargs="*",
        default=["default"],
        help="checkpoints, .onnx files, 'default', or registered names (random weights, speed only)",
    )
    p.add_argument("--data", help="dataset to take lines from")
    p.add_argument("--split", default="test", help="split of --data (default test)")
    p.add_argument("--images", help="folder of line images instead of --data")
    p.add_argument("--max-lines", type=int, default=200, help="lines to time (default 200; 0 = all)")
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch and onnxruntime (0 = default)"
    )
    p.add_argument(
        "--engines",
        default="torch",
        help="comma-separated: torch, onnx (onnxruntime), openvino; ONNX engines time a checkpoint's export",
    )
    p.add_argument(
        "--precisions",
        default="fp32",
        help="comma-separated: fp32, bf16 (bfloat16: torch and openvino only; onnx rows stay fp32)",
    )
    p.add_argument(
        "--lines-per-run",
        help="comma-separated: onnxruntime rows for each value, calls of at most N lines (0 = whole batches; "
        "default the engine's own, 2)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output")
    p.set_defaults(func=run)


def _int_list(option: str, raw: str, least: int, bound: str) -> list[int]:
    """Comma-separated integers of ``option``, each at least ``least`` (``bound`` says so in the error)."""
    from htrlab.errors import ConfigError

    try:
        values = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} must be comma-separated integers, got {raw!r}") from exc
    if not values or min(values) < least:
        raise ConfigError(f"{option} {bound}, got {raw!r}")
    return values


def run(args: argparse.Namespace) -> int:
    import torch

    from htrlab.errors import ConfigError
    from htrlab.evaluate.speed import (
        as_dicts,
        benchmark_engine,
        load_lines,
        machine_facts,
        resolve_models,
        rows_to_markdown,
    )

    sizes = _int_list("--batch-sizes", args.batch_sizes, 1, "must be positive integers")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    precisions = [e.strip() for e in args.precisions.split(",") if e.strip()]
    if not engines or not set(engines) <= {"torch", "onnx", "openvino"}:
        raise ConfigError(f"--engines takes torch, onnx and/or openvino, got {args.engines!r}")
    if not precisions or not set(precisions) <= {"fp32", "bf16"}:
        raise ConfigError(f"--precisions takes fp32 and/or bf16, got {args.precisions!r}")
    per_run = (
        _int_list("--lines-per-run", args.lines_per_run, 0, "takes integers >= 0")
        if args.lines_per_run is not None
        else []
    )
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    lines, texts = load_lines(args.data, args.images, args.split, args.max_lines)
    if not lines:
        raise ConfigError("no line images to time")
    facts = machine_facts()
    print(f"machine: {facts}; {len(lines)} lines", file=sys.stderr)
    rows = []
    # random-weight autoregressive models generate as many tokens as the average line has characters
    tokens = round(sum(map(len, texts)) / len(texts)) + 1 if texts else 32
    for label, engine in resolve_models(args.models, engines, args.threads, tokens, precisions):
        variants = (
            [replace(engine, lines_per_run=n) for n in per_run]
            if engine.name == "onnx" and per_run
            else [engine]
        )
        for variant in variants:
            rows += benchmark_engine(
                label, variant, lines, sizes, args.threads or torch.get_num_threads(), args.repeats
            )
            print(rows_to_markdown(rows[-len(sizes) :]).splitlines()[-1], file=sys.stderr)
    if per_run and not any(r.engine == "onnx" for r in rows):
        print("note: --lines-per-run applies to onnxruntime rows, and there were none", file=sys.stderr)
    # --json: a list of rows; the machine facts went to stderr above
    write_output(dumps(as_dicts(rows)) if args.json else rows_to_markdown(rows), args.output)
    return 0
