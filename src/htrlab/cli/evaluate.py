"""``htrlab evaluate CHECKPOINT DATASET [--splits train,val,test]``."""

from __future__ import annotations

import argparse
import sys

from htrlab.cli.common import (
    add_decoder_options,
    add_engine_option,
    add_line_crop,
    add_on_error,
    check_writable,
    dumps,
    make_decoder,
    write_output,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="CER/WER of a checkpoint on dataset splits, one row per split")
    p.add_argument("checkpoint", help="checkpoint (.safetensors), ONNX export (.onnx) or 'default'")
    p.add_argument("dataset")
    add_engine_option(p)
    p.add_argument("--splits", default="train,val,test", help="comma-separated (default train,val,test)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-lines", type=int, default=0, help="evaluate at most N lines per split (0 = all)")
    p.add_argument("--json", action="store_true", help="machine-readable output (with per-line predictions)")
    p.add_argument("-o", "--output", help="write results here instead of stdout")
    p.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FILE",
        help="also write an error report: .xlsx, .html or .csv by extension (repeatable)",
    )
    add_decoder_options(p)
    add_on_error(p)
    add_line_crop(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from htrlab.data.dataset import open_dataset
    from htrlab.evaluate.evaluator import evaluate_splits, format_table
    from htrlab.read import Reader
    from htrlab.read.engines import load_engine
    from htrlab.text.metrics import not_reading

    check_writable(args.output, "-o")  # before the work: a finished evaluation is never lost
    for path in args.report or []:
        check_writable(path, "--report")
    loaded = load_engine(args.checkpoint, args.engine, precision=args.precision)
    wanted = [s.strip() for s in args.splits.split(",") if s.strip()]
    dataset = open_dataset(args.dataset, on_error=args.on_error, line_crop=args.line_crop)
    available = dataset.splits
    splits = [s for s in wanted if s in available]
    missing = [s for s in wanted if s not in available]
    if missing:
        print(
            f"note: dataset has no split(s) {', '.join(missing)}; evaluating {', '.join(splits) or 'nothing'}",
            file=sys.stderr,
        )
    if not splits:
        from htrlab.errors import DataError

        raise DataError(
            f"none of the splits {wanted} exist in {args.dataset} (it has: {', '.join(available)})"
        )
    decoder, settings = make_decoder(args, loaded.charset)
    reader = Reader.of(loaded, decoder, settings, batch_size=args.batch_size)
    results = evaluate_splits(
        reader, dataset, splits, args.on_error, max_lines=args.max_lines, progress=sys.stderr.isatty()
    )
    trained_on = loaded.meta.data.get("train_split")
    unread = [*dataset.skipped, *(m for r in results for m in r.skipped_lines)]
    if unread:
        print(
            f"note: {len(unread)} pages or lines of {args.dataset} could not be read and are not scored "
            f"({', '.join(f'{r.split}: {r.skipped}' for r in results)}, {len(dataset.skipped)} when the "
            f"dataset was opened); e.g. {unread[0]}" + ("" if args.json else "; --json lists them all"),
            file=sys.stderr,
        )
    for r in results:
        warning = not_reading([p["ref"] for p in r.predictions], [p["hyp"] for p in r.predictions])
        if warning:
            print(f"WARNING: '{r.split}': {warning}", file=sys.stderr)
        if r.leaked and r.split != trained_on:
            print(
                f"WARNING: {r.leaked} of {r.lines} '{r.split}' lines are among this checkpoint's TRAINING lines "
                "(same image, or same line id and text). Its score on them measures memory, not reading.",
                file=sys.stderr,
            )
    if args.json:
        write_output(
            dumps(
                {
                    "checkpoint": str(args.checkpoint),
                    "dataset": str(args.dataset),
                    "skipped_when_opened": list(dataset.skipped),
                    "results": [dict(r.row(), predictions=r.predictions) for r in results],
                }
            ),
            args.output,
        )
    else:
        write_output(format_table(results), args.output)
    if args.report:
        from htrlab.evaluate.report import write_report

        for path in args.report:
            print(f"wrote {write_report(results, path)}", file=sys.stderr)
    return 0
