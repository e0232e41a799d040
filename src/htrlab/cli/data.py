"""``htrlab data show|check|pack DATASET``."""

from __future__ import annotations

import argparse
import sys

from htrlab.cli.common import add_line_crop, add_on_error, dumps, line_crop_choice, write_output


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
    pack = verbs.add_parser(
        "pack",
        help="preprocess a dataset once into one small file (4-bit, compressed) to carry to a GPU machine; "
        "htrlab train reads it like any dataset",
    )
    pack.add_argument("dataset", help="PATH or FORMAT:PATH")
    pack.add_argument("-o", "--output", required=True, help="the pack to write (.htrpack)")
    pack.add_argument("--height", type=int, default=64, help="preprocessing height (default 64)")
    pack.add_argument(
        "--checkpoint", help="use the preprocessing stored in this checkpoint (instead of --height)"
    )
    pack.add_argument(
        "--line-crop",
        type=line_crop_choice(("band", "outline", "box", "ink", "mixed")),
        metavar="{band,outline,box,ink,mixed}",
        default="band",
        help="how page lines are cut (default band); mixed: every line in every style, --crop-variants "
        "randomly varied cuts of each training line (about four times the size)",
    )
    pack.add_argument("--crop-variants", type=int, default=1, help="with --line-crop mixed (default 1)")
    pack.add_argument(
        "--one-style-per-line",
        action="store_true",
        help="with --line-crop mixed: each line cut in one style drawn at random (seeded by --seed), the size "
        "of a one-style pack with every style represented",
    )
    pack.add_argument("--seed", type=int, default=0, help="for --one-style-per-line (default 0)")
    pack.add_argument(
        "--max-lines", type=int, default=0, help="at most this many lines of each split, the first (0 = all)"
    )
    pack.add_argument("--splits", help="comma-separated splits to pack (default: all the dataset has)")
    pack.add_argument(
        "--on-error",
        choices=["error", "skip"],
        default="skip",
        help="skip unreadable lines and list them in the pack (default) or stop at the first",
    )
    pack.set_defaults(func=run_pack)
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
        from htrlab.models.checkpoint import read_meta

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


def run_pack(args: argparse.Namespace) -> int:
    from htrlab.data.dataset import open_dataset
    from htrlab.data.pack import PACK_SUFFIX, write_pack
    from htrlab.data.prepared import prepare_lines
    from htrlab.data.preprocess import PreprocessConfig
    from htrlab.data.sample import cut_every_way, one_style_each
    from htrlab.errors import ConfigError

    if not args.output.endswith(PACK_SUFFIX):
        raise ConfigError(
            f"-o {args.output}: a pack's name ends in {PACK_SUFFIX} (how datasets recognise it)"
        )
    if not 1 <= args.crop_variants <= 16:
        raise ConfigError(f"--crop-variants must be in 1..16, got {args.crop_variants}")
    if args.one_style_per_line and args.line_crop != "mixed":
        raise ConfigError("--one-style-per-line goes with --line-crop mixed")
    if args.checkpoint:
        from htrlab.config import from_dict
        from htrlab.models.checkpoint import read_meta

        cfg = from_dict(PreprocessConfig, read_meta(args.checkpoint).preprocess)
    else:
        cfg = PreprocessConfig(height=args.height)
    crop = args.line_crop
    ds = open_dataset(args.dataset, on_error=args.on_error, line_crop="band" if crop == "mixed" else crop)
    names = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else list(ds.splits)
    splits = {}
    for name in names:
        samples = [s for s in ds.split(name) if s.text]
        if args.max_lines > 0:
            samples = samples[: args.max_lines]
        samples = cut_every_way(samples, crop, args.crop_variants if name == "train" else 0)
        if args.one_style_per_line:
            samples = one_style_each(samples, args.seed)
        if not samples:
            raise ConfigError(f"{args.dataset}: split {name!r} holds no transcribed lines")
        splits[name] = prepare_lines(samples, cfg, args.on_error, None, None, sys.stderr.isatty(), name)
    about = {
        "source": str(args.dataset),
        "dataset_format": ds.format,
        "line_crop": crop,
        "crop_variants": args.crop_variants if crop == "mixed" else 0,
        "one_style_per_line": bool(args.one_style_per_line),
        "unread_when_opened": list(ds.skipped),
    }
    summary = write_pack(args.output, splits, cfg, about)
    skipped = sum(len(v.skipped) for v in splits.values()) + len(ds.skipped)
    write_output(dumps({**summary, "skipped": skipped}), None)
    return 0
