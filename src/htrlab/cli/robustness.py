"""``htrlab robustness CHECKPOINT DATASET --ops ... --severities ... --decoders ... -o DIR``."""

from __future__ import annotations

import argparse
import sys

from htrlab.cli.common import add_beam_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robustness", help="CER under each damage operation x severity x decoder (tables, plot)"
    )
    p.add_argument("checkpoint", help="checkpoint, ONNX export, or 'default' (the bundled model)")
    p.add_argument("dataset")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--ops",
        default="occlusion,stain,missing_strokes,fading,blur_defocus,noise_gaussian,"
        "low_resolution,bleed_through",
        help="comma-separated operations (htrlab degrade --list-ops)",
    )
    p.add_argument("--severities", default="1,3,5")
    p.add_argument(
        "--decoders",
        default="greedy",
        help="comma-separated decoder names (see `htrlab evaluate --help`: greedy, beam, beam+char, beam+word, "
        "beam+neural, beam+lm, rescore+char, ...); greedy first",
    )
    add_beam_options(p)
    p.add_argument("--max-lines", type=int, default=0, help="at most N lines (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="robustness", help="folder for robustness.csv/.md/.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from htrlab.cli.common import make_decoder
    from htrlab.data.dataset import load_split_images
    from htrlab.errors import ConfigError
    from htrlab.evaluate.robustness import run_robustness, write_outputs
    from htrlab.read.engines import load_engine

    try:
        severities = [int(s) for s in args.severities.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(f"--severities must be integers 1..5, got {args.severities!r}") from exc
    if not severities or not all(1 <= s <= 5 for s in severities):
        raise ConfigError(f"--severities must be integers 1..5, got {args.severities!r}")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    names = [d.strip() for d in args.decoders.split(",") if d.strip()]
    if not names or names[0] != "greedy":
        names = ["greedy", *[n for n in names if n != "greedy"]]  # the reference of the relative reductions
    loaded = load_engine(args.checkpoint)
    decoders = {name: make_decoder(args, loaded.charset, lm_unused_ok=True, name=name)[0] for name in names}
    grays, refs = load_split_images(args.dataset, args.split, args.max_lines)
    print(
        f"robustness: {len(refs)} lines x ({len(ops)} ops x {len(severities)} severities + clean) x "
        f"{len(decoders)} decoders",
        file=sys.stderr,
    )
    rows = run_robustness(loaded, grays, refs, ops, severities, decoders, args.seed)
    paths = write_outputs(rows, args.output)
    sys.stdout.write(paths["md"].read_text(encoding="utf-8"))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
