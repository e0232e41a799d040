"""``htrlab lm build``: character n-gram language models for beam search with an LM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrlab.cli.common import dumps, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="language models for decoding")
    lsub = p.add_subparsers(dest="lm_command", required=True)
    b = lsub.add_parser("build", help="estimate a character n-gram LM (interpolated Kneser-Ney) as ARPA")
    b.add_argument("-o", "--output", required=True, help="ARPA file to write")
    b.add_argument("--order", type=int, default=6)
    b.add_argument("--text", nargs="*", default=[], help="text files, one sentence or line per line")
    b.add_argument(
        "--dataset", help="also the transcriptions of this dataset's --splits (never its test split)"
    )
    b.add_argument("--splits", default="train", help="comma-separated splits of --dataset (default train)")
    b.add_argument("--model", help="a checkpoint: report LM characters it cannot output, and the reverse")
    b.set_defaults(func=run_build)
    t = lsub.add_parser("tune", help="choose the LM weight and word score of beam+lm decoding on a val split")
    t.add_argument("model", help="checkpoint, ONNX export or 'default'")
    t.add_argument("dataset")
    t.add_argument("--lm", required=True, help="character LM (ARPA)")
    t.add_argument("--split", default="val", help="the split to tune on (never test)")
    t.add_argument("--alphas", default="0.2,0.4,0.7,1.0")
    t.add_argument("--betas", default="0,1,2")
    t.add_argument("--beam-size", type=int, default=16)
    t.add_argument("--max-lines", type=int, default=0)
    t.add_argument("-o", "--output", required=True, help="JSON file with the chosen settings and the grid")
    t.set_defaults(func=run_tune)


def _read_text(paths: list[str]) -> list[str]:
    from htrlab.errors import DataError
    from htrlab.text.normalize import normalize_text

    lines = []
    for p in paths:
        path = Path(p)
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read as UTF-8 text: {exc}") from exc
        lines += [t for t in (normalize_text(x) for x in raw.splitlines()) if t]
    return lines


def run_build(args: argparse.Namespace) -> int:
    from htrlab.errors import ConfigError, DataError
    from htrlab.lm.ngram import build_char_ngram

    lines = _read_text(args.text)
    if args.dataset:
        from htrlab.data.dataset import open_dataset

        splits = [s.strip() for s in args.splits.split(",") if s.strip()]
        if "test" in splits:
            raise ConfigError("an LM built from test transcriptions would leak them into the test score")
        ds = open_dataset(args.dataset, on_error="skip")
        lines += [s.text for s in ds.split(*splits) if s.text]
    if not lines:
        raise DataError("no text: pass --text FILE... and/or --dataset PATH")
    print(f"lm: {len(lines)} lines, {sum(map(len, lines))} characters, order {args.order}", file=sys.stderr)
    lm = build_char_ngram(lines, args.order)
    path = lm.write_arpa(args.output)
    report: dict[str, object] = {
        "output": str(path),
        "order": args.order,
        "lines": len(lines),
        "vocabulary": len(lm.vocab),
        "ngrams": [len(p) for p in lm.probs],
    }
    if args.model:
        from htrlab.evaluate.engines import load_engine

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


def run_tune(args: argparse.Namespace) -> int:
    from htrlab.bundled import default_checkpoint
    from htrlab.data.dataset import open_dataset
    from htrlab.data.prepared import default_cache_dir, prepare_lines
    from htrlab.errors import ConfigError, DataError
    from htrlab.evaluate.engines import load_engine
    from htrlab.evaluate.inference import emissions
    from htrlab.lm.tune import save_tuning, score_decoder, tune_lm_weights

    if args.split == "test":
        raise ConfigError("tuning on the test split would make its score meaningless; tune on val")
    try:
        alphas = [float(a) for a in args.alphas.split(",")]
        betas = [float(b) for b in args.betas.split(",")]
    except ValueError as exc:
        raise ConfigError(f"--alphas/--betas must be comma-separated numbers: {exc}") from exc
    engine = load_engine(default_checkpoint() if args.model == "default" else args.model)
    samples = [s for s in open_dataset(args.dataset, on_error="skip").split(args.split) if s.text]
    if args.max_lines:
        samples = samples[: args.max_lines]
    if not samples:
        raise DataError(f"no transcribed lines in split {args.split!r} of {args.dataset}")
    lines = prepare_lines(
        samples, engine.preprocess, "skip", default_cache_dir(), progress=sys.stderr.isatty()
    )
    ems = emissions(engine, lines.images)
    greedy_cer, _, _ = score_decoder(ems, lines.texts, engine.charset, None)
    best, grid = tune_lm_weights(ems, lines.texts, engine.charset, args.lm, alphas, betas, args.beam_size)
    path = save_tuning(
        args.output, args.lm, best, grid, split=args.split, lines=len(lines), greedy_cer=greedy_cer
    )
    print(
        f"lm tune: alpha {best.alpha}, beta {best.beta}: {args.split} CER {best.cer:.4f} (greedy {greedy_cer:.4f})",
        file=sys.stderr,
    )
    write_output(dumps({"output": str(path), "alpha": best.alpha, "beta": best.beta, "cer": best.cer}), None)
    return 0
