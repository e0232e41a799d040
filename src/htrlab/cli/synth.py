"""``htrlab synth -n 10000 -o DIR``: synthetic handwriting-like lines from text and handwriting fonts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrlab.cli.common import dumps, write_output


def _default_corpus() -> list[str]:
    shared = Path("../shared/data/text/brown.txt")
    return [str(shared)] if shared.is_file() else []


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="render synthetic lines (characters, words, lines) with handwriting fonts"
    )
    p.add_argument("-n", type=int, required=True, help="number of samples")
    p.add_argument("-o", "--output", required=True, help="folder to write (OUT/<font>/<index>.png + .txt)")
    p.add_argument(
        "--fonts",
        nargs="*",
        help="font files or folders (default: $HTRLAB_FONTS, "
        "~/.local/share/htrlab/fonts; fill it with scripts/fetch_fonts.sh)",
    )
    p.add_argument(
        "--text",
        nargs="*",
        help="text files, one sentence per line, or IAM lines.txt (default: ../shared/data/text/brown.txt)",
    )
    p.add_argument(
        "--style",
        choices=["handwriting", "printed"],
        default="handwriting",
        help="variation preset: handwriting (slant, wobble, elastic) or printed/typed (upright, straight)",
    )
    p.add_argument(
        "--crop-styles",
        action="store_true",
        help="cut each line as page lines are cut (tight ink box, outline with extra paper, box or band with "
        "the lines above and below reaching in), as users' line crops come",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="index of the first sample (to extend a dataset)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from htrlab.errors import ConfigError
    from htrlab.synth import find_fonts, generate, load_corpus
    from htrlab.synth.render import STYLES

    texts = args.text or _default_corpus()
    if not texts:
        raise ConfigError("no text to render: pass --text FILE (one sentence per line)")
    if args.n < 1:
        raise ConfigError(f"-n must be >= 1, got {args.n}")
    fonts = find_fonts(args.fonts or None)
    corpus = load_corpus(texts)
    caps = sum(f.caps_only for f in fonts)
    print(f"synth: {len(fonts)} fonts ({caps} capitals-only), {len(corpus)} sentences", file=sys.stderr)
    stats = generate(
        args.n,
        args.output,
        fonts,
        corpus,
        args.seed,
        cfg=replace(STYLES[args.style](), crop_styles=args.crop_styles),
        start=args.start,
        progress=sys.stderr.isatty(),
    )
    write_output(dumps({"output": args.output, "fonts": [f.name for f in fonts], **stats}), None)
    return 0
