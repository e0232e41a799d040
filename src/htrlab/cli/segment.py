"""``htrlab segment IMAGE... -o OUT``: find the text lines of pages, write PAGE-XML or ALTO (no recognition)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from htrlab.cli.common import add_on_error, add_segmenter_options, segment_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="find the text lines of page images; write PAGE-XML or ALTO")
    p.add_argument("images", nargs="+")
    p.add_argument(
        "-o", "--output", required=True, help="XML file (one image) or folder (one file per image)"
    )
    p.add_argument("--format", choices=["page-xml", "alto"], default="page-xml")
    p.add_argument("--show", help="PNG with the found lines drawn (a folder for several images)")
    add_segmenter_options(p)
    add_on_error(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from htrlab.data.images import load_gray
    from htrlab.errors import DataError
    from htrlab.segment import segment_lines
    from htrlab.segment.draw import draw_layout
    from htrlab.segment.export import write_alto, write_page_xml

    paths = [Path(p) for p in args.images]
    out = Path(args.output)
    single = len(paths) == 1 and out.suffix.lower() == ".xml"
    failed = 0
    cfg = segment_config(args)
    for p in paths:
        try:
            gray = load_gray(p)
            layout = segment_lines(gray, cfg, source=str(p))
        except DataError as exc:
            if args.on_error == "error":
                raise
            print(f"{p}: {exc}", file=sys.stderr)
            failed += 1
            continue
        target = out if single else out / f"{p.stem}.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(p.resolve(), target.parent.resolve())
        (write_page_xml if args.format == "page-xml" else write_alto)(layout, rel, target)
        if args.show:
            show = Path(args.show)
            draw_layout(
                gray, layout, show / f"{p.stem}.lines.png" if len(paths) > 1 or not show.suffix else show
            )
        print(
            f"{p}: {len(layout.lines)} lines, skew {layout.skew_degrees:+.1f} deg -> {target}",
            file=sys.stderr,
        )
    if failed:
        print(f"{failed} of {len(paths)} images could not be read", file=sys.stderr)
    return 1 if failed == len(paths) else 0
