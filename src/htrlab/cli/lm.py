"""``htrlab lm build | train-neural | tune``: language models for decoding, and choosing decoder settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from htrlab.cli.common import add_line_crop, dumps, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    from htrlab.cli.common import add_beam_options

    p = sub.add_parser("lm", help="language models for decoding")
    lsub = p.add_subparsers(dest="lm_command", required=True)
    b = lsub.add_parser(
        "build", help="estimate an n-gram LM as ARPA: characters (interpolated Kneser-Ney) or words (3-gram)"
    )
    b.add_argument("-o", "--output", required=True, help="ARPA file to write")
    b.add_argument("--unit", choices=["char", "word"], default="char")
    b.add_argument(
        "--order", type=int, default=6, help="n-gram order of a character LM (word LMs are 3-grams)"
    )
    _add_text_sources(b)
    b.add_argument(
        "--prune",
        type=int,
        default=0,
        help="leave out character n-grams of order 3 and above seen fewer than this many times (0 = keep all)",
    )
    b.add_argument(
        "--wrap",
        type=int,
        default=0,
        help="cut the --text lines (paragraphs) into lines of at most this many characters at spaces, as "
        "handwritten lines are (0 = as they are)",
    )
    b.add_argument("--model", help="a checkpoint: report LM characters it cannot output, and the reverse")
    b.set_defaults(func=run_build)
    n = lsub.add_parser("train-neural", help="train a neural (LSTM) character LM for beam+neural decoding")
    n.add_argument("-o", "--output", required=True, help="safetensors file to write")
    _add_text_sources(n)
    n.add_argument(
        "--val-split", default="val", help="split of --dataset for the reported bits per character"
    )
    n.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    n.add_argument(
        "--max-steps", type=int, default=0, help="stop after N steps instead (0 = the time budget)"
    )
    n.add_argument("--hidden", type=int, default=512)
    n.add_argument("--layers", type=int, default=1)
    n.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    n.add_argument("--seed", type=int, default=0)
    n.set_defaults(func=run_train_neural)
    t = lsub.add_parser(
        "tune", help="choose decoder settings (LM weights, word score, rescoring weights) on a val split"
    )
    t.add_argument("model", help="checkpoint, ONNX export or 'default'")
    t.add_argument("dataset")
    t.add_argument(
        "--decoder", default="beam+lm", help="the decoder to tune (names as in evaluate --decoder)"
    )
    add_beam_options(t)
    t.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="OPTION=V1,V2",
        help="values to try for a decoder option (repeatable), e.g. lm_weight=0.3,0.6,1 word_score=0,1.5; "
        "default: --alphas x --betas for the first LM weight the decoder uses",
    )
    t.add_argument("--alphas", default="0.2,0.4,0.7,1.0", help="default grid of the LM weight")
    t.add_argument("--betas", default="0,1,2", help="default grid of the word score")
    t.add_argument("--split", default="val", help="the split to tune on (never test)")
    t.add_argument("--max-lines", type=int, default=0)
    t.add_argument(
        "-o",
        "--output",
        required=True,
        help="JSON with the chosen settings (use with --decoding) and the grid",
    )
    add_line_crop(t)
    t.set_defaults(func=run_tune)


def _add_text_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", nargs="*", default=[], help="text files, one sentence or line per line")
    p.add_argument(
        "--dataset", help="also the transcriptions of this dataset's --splits (never its test split)"
    )
    p.add_argument("--splits", default="train", help="comma-separated splits of --dataset (default train)")


def _gather_lines(args: argparse.Namespace) -> list[str]:
    from htrlab.errors import ConfigError, DataError

    lines = _read_text(args.text)
    if getattr(args, "wrap", 0):
        import textwrap

        lines = [
            part
            for t in lines
            for part in textwrap.wrap(t, args.wrap, break_long_words=False, break_on_hyphens=False)
        ]
    if args.dataset:
        from htrlab.data.dataset import open_dataset

        splits = [s.strip() for s in args.splits.split(",") if s.strip()]
        if "test" in splits:
            raise ConfigError("an LM built from test transcriptions would leak them into the test score")
        ds = open_dataset(args.dataset, on_error="skip")
        lines += [s.text for s in ds.split(*splits) if s.text]
    if not lines:
        raise DataError("no text: pass --text FILE... and/or --dataset PATH")
    return lines


def _read_text(paths: list[str]) -> list[str]:
    from htrlab.errors import DataError
    from htrlab.text.normalize import fold_typography, normalize_text

    lines = []
    for p in paths:
        path = Path(p)
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read as UTF-8 text: {exc}") from exc
        lines += [t for t in (fold_typography(normalize_text(x)) for x in raw.splitlines()) if t]
    return lines


def run_build(args: argparse.Namespace) -> int:
    from htrlab.lm.ngram import build_char_ngram

    lines = _gather_lines(args)
    if args.unit == "word":
        from htrlab.lm.word import build_word_ngram

        print(f"lm: {len(lines)} lines, word 3-gram", file=sys.stderr)
        facts = build_word_ngram(lines, args.output)
        write_output(dumps({"output": str(args.output), "unit": "word", "order": 3, **facts}), None)
        return 0
    print(f"lm: {len(lines)} lines, {sum(map(len, lines))} characters, order {args.order}", file=sys.stderr)
    lm = build_char_ngram(lines, args.order, args.prune)
    path = lm.write_arpa(args.output)
    report: dict[str, object] = {
        "output": str(path),
        "order": args.order,
        "prune": args.prune,
        "lines": len(lines),
        "vocabulary": len(lm.vocab),
        "ngrams": [len(p) for p in lm.probs],
    }
    if args.model:
        from htrlab.read.engines import load_engine

        charset = load_engine(args.model).charset
        lm_chars = {" " if c == "|" else c for c in lm.vocab if len(c) == 1 and c.isprintable()}
        report["lm_chars_not_in_model"] = sorted(lm_chars - set(charset.symbols))
        report["model_chars_not_in_lm"] = sorted(set(charset.symbols) - lm_chars)
        if report["model_chars_not_in_lm"]:
            print(
                f"lm: the model's characters {report['model_chars_not_in_lm']} never occur in the LM text; "
                "the LM gives them only its smallest probability",
                file=sys.stderr,
            )
    write_output(dumps(report), None)
    return 0


def run_train_neural(args: argparse.Namespace) -> int:
    import torch

    from htrlab.train.charlm import train_char_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    lines = _gather_lines(args)
    val: list[str] = []
    if args.dataset and args.val_split:
        from htrlab.data.dataset import open_dataset

        if args.val_split == "test":
            from htrlab.errors import ConfigError

            raise ConfigError("--val-split test would look at the test transcriptions; use val")
        ds = open_dataset(args.dataset, on_error="skip")
        if args.val_split in ds.splits:
            val = [s.text for s in ds.split(args.val_split) if s.text]
    print(f"lm: {len(lines)} lines, {sum(map(len, lines))} characters; {len(val)} val lines", file=sys.stderr)
    rep = train_char_lm(
        lines,
        args.output,
        val,
        minutes=args.minutes,
        max_steps=args.max_steps,
        hidden=args.hidden,
        layers=args.layers,
        seed=args.seed,
    )
    write_output(dumps({"output": str(args.output), **rep.__dict__}), None)
    return 0


def _parse_grid(args: argparse.Namespace) -> dict[str, list[float]]:
    from htrlab.errors import ConfigError

    grid: dict[str, list[float]] = {}
    try:
        for item in args.grid:
            key, _, vals = item.partition("=")
            key = key.strip().replace("-", "_")
            if not hasattr(args, key) or not vals:
                raise ConfigError(f"--grid {item!r}: expected OPTION=V1,V2 with a decoder option name")
            grid[key] = [float(v) for v in vals.split(",")]
        if not grid:
            parts = args.decoder.split("+")[1:]
            weight = "lm_weight"
            if "lm" not in parts and "char" not in parts:
                weight = (
                    "word_lm_weight" if "word" in parts else "neural_lm_weight" if "neural" in parts else ""
                )
            if args.decoder.startswith("rescore"):
                from htrlab.decoding.rescore import RESCORE_GRID

                grid = {k: list(v) for k, v in RESCORE_GRID.items()}
            elif weight:
                grid = {weight: [float(a) for a in args.alphas.split(",")]}
                grid["word_score"] = [float(b) for b in args.betas.split(",")]
    except ValueError as exc:
        raise ConfigError(f"grid values must be comma-separated numbers: {exc}") from exc
    if not grid:
        raise ConfigError(f"nothing to tune for decoder {args.decoder!r}: give --grid OPTION=V1,V2")
    return grid


def run_tune(args: argparse.Namespace) -> int:
    from dataclasses import asdict, replace

    from htrlab.cli.common import given_options, make_decoder
    from htrlab.data.dataset import open_dataset
    from htrlab.data.prepared import default_cache_dir, prepare_lines
    from htrlab.decoding.config import make_decoder as build_decoder
    from htrlab.decoding.config import typed_setting
    from htrlab.errors import ConfigError, DataError
    from htrlab.evaluate.tune import score_decoder, tune_grid
    from htrlab.read.engines import load_engine
    from htrlab.read.predict import emissions

    if args.split == "test":
        raise ConfigError("tuning on the test split would make its score meaningless; tune on val")
    grid = _parse_grid(args)
    engine = load_engine(args.model)
    _, base = make_decoder(
        args, engine.charset
    )  # checks the decoder name and its LMs before the network runs
    samples = [
        s
        for s in open_dataset(args.dataset, on_error="skip", line_crop=args.line_crop).split(args.split)
        if s.text
    ]
    if args.max_lines:
        samples = samples[: args.max_lines]
    if not samples:
        raise DataError(f"no transcribed lines in split {args.split!r} of {args.dataset}")
    lines = prepare_lines(
        samples, engine.preprocess, "skip", default_cache_dir(), progress=sys.stderr.isatty()
    )
    ems = emissions(engine, lines.images)
    greedy_cer, _, _ = score_decoder(ems, lines.texts, engine.charset, None)

    def typed(settings: dict[str, float]) -> dict[str, Any]:  # integer settings stay integers
        return {k: typed_setting(k, v) for k, v in settings.items()}

    def build(settings: dict[str, float]) -> object:
        return build_decoder(
            replace(base, **typed(settings)), engine.charset, args.model, given_options(args)
        )

    best, rows = tune_grid(ems, lines.texts, engine.charset, build, grid)
    settings = asdict(replace(base, **typed({k: best[k] for k in grid})))
    doc = {
        "settings": settings,
        "split": args.split,
        "lines": len(lines),
        "cer": best["cer"],
        "wer": best["wer"],
        "greedy_cer": greedy_cer,
        "model": str(args.model),
        "grid": rows,
    }
    write_output(dumps(doc), args.output)
    chosen = ", ".join(f"{k} {best[k]}" for k in grid)
    print(f"lm tune: {chosen}: {args.split} CER {best['cer']:.4f} (greedy {greedy_cer:.4f})", file=sys.stderr)
    write_output(dumps({"output": args.output, **{k: best[k] for k in grid}, "cer": best["cer"]}), None)
    return 0
