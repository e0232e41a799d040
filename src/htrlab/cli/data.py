"""``htrlab data show|check DATASET``."""

from __future__ import annotations

import argparse
import sys

from htrlab.cli.common import add_line_crop, add_on_error, dumps, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="look at a dataset: sample grid, statistics, leakage check")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = verbs.add_parser("show", help="draw N random samples as the model sees them, with their labels")
    show.add_argument(
        "dataset", help="PATH or FORMAT:PATH (formats: page, alto, iam, bentham, cvl, folder, tsv)"
    )
    show.add_argument("-n", type=int, default=20, help="number of samples (default 20)")
    show.add_argument("-o", "--output", default="grid.png", help="PNG to write (default grid.png)")
    show.add_argument("--split", help="only this split")
    show.add_argument("--height", type=int, default=64, help="preprocessing height (default 64)")
    show.add_argument("--checkpoint", help="use the preprocessing stored in this checkpoint")
    show.add_argument("--augment", action="store_true", help="also show an augmented copy of each sample")
    show.add_argument("--seed", type=int, default=0)
    add_on_error(show)
    add_line_crop(show)
    show.set_defaults(func=run_show)
    check = verbs.add_parser(
        "check", help="counts, charset, sizes, problems; exit 1 on leakage between splits"
    )
    check.add_argument("dataset")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("-o", "--output", help="write the report here instead of stdout")
    check.add_argument(
        "--min-text-chars",
        type=int,
        default=40,
        help="identical transcriptions this long or longer across splits count as leakage "
        "(shorter ones, like salutations, recur legitimately; default 40)",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="also exit 1 when files or annotations are unreadable or malformed",
    )
    check.set_defaults(func=run_check)
    p.set_defaults(func=lambda a: 2)


def run_show(args: argparse.Namespace) -> int:
    import numpy as np

    from htrlab.data.augment import AugmentConfig
    from htrlab.data.dataset import open_dataset
    from htrlab.data.preprocess import PreprocessConfig
    from htrlab.data.show import render_grid

    ds = open_dataset(args.dataset, on_error=args.on_error, line_crop=args.line_crop)
    samples = ds.split(args.split) if args.split else ds.samples
    if args.checkpoint:
        from htrlab.config import from_dict
        from htrlab.train.checkpoint import read_meta

        cfg = from_dict(PreprocessConfig, read_meta(args.checkpoint).preprocess)
    else:
        cfg = PreprocessConfig(height=args.height)
    rng = np.random.default_rng(args.seed)
    pick = sorted(rng.choice(len(samples), size=min(args.n, len(samples)), replace=False)) if samples else []
    out = render_grid(
        [samples[i] for i in pick],
        cfg,
        args.output,
        AugmentConfig() if args.augment else None,
        seed=args.seed,
    )
    print(f"wrote {out} ({len(pick)} samples of {len(samples)})", file=sys.stderr)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from htrlab.data.check import check_dataset
    from htrlab.data.dataset import open_dataset

    ds = open_dataset(args.dataset, on_error="skip")
    report = check_dataset(ds, min_text_chars=args.min_text_chars, progress=sys.stderr.isatty())
    write_output(dumps(report.to_dict()) if args.json else report.format_text(), args.output)
    if report.problems and not args.strict:
        print(
            f"warning: {len(report.problems)} unreadable or malformed samples (see the report)",
            file=sys.stderr,
        )
    return 1 if report.leakage or (args.strict and report.problems) else 0
