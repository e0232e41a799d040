"""``htrlab segment IMAGE... -o OUT``: find the text lines of pages, write PAGE-XML or ALTO (no recognition)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrlab.cli.common import (
    add_input_options,
    add_on_error,
    add_segmenter_options,
    input_pages,
    segment_config,
    write_layout_xml,
    xml_targets,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="find the text lines of page images; write PAGE-XML or ALTO")
    p.add_argument("images", nargs="+", help="images, folders of them, multi-page TIFFs or PDFs (every page)")
    p.add_argument(
        "-o", "--output", required=True, help="XML file (one image) or folder (one file per image)"
    )
    p.add_argument("--format", choices=["page-xml", "alto"], default="page-xml")
    p.add_argument("--show", help="PNG with the found lines drawn (a folder for several images)")
    add_input_options(p)
    add_segmenter_options(p)
    add_on_error(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from htrlab.data.images import load_gray
    from htrlab.errors import DataError
    from htrlab.segment import segment_lines
    from htrlab.segment.draw import draw_layout

    sources, failed = input_pages([Path(p) for p in args.images], args.on_error)
    for src, problem in failed.items():
        print(f"{src}: {problem}", file=sys.stderr)
    out = Path(args.output)
    single = len(sources) == 1 and out.suffix.lower() == ".xml"
    targets = {sources[0]: out} if single else xml_targets(sources, out)
    cfg = segment_config(args)
    for src in sources:
        if src in failed:
            continue
        try:
            gray = load_gray(src.path, src.page, args.pdf_dpi)
            layout = segment_lines(gray, cfg, source=str(src))
        except DataError as exc:
            if args.on_error == "error":
                raise
            print(f"{src}: {exc}", file=sys.stderr)
            failed[src] = str(exc)
            continue
        target = targets[src]
        write_layout_xml(args.format, src, layout, gray, target)
        if args.show:
            show = Path(args.show)
            several = len(sources) > 1 or not show.suffix
            draw_layout(gray, layout, show / f"{src.stem}.lines.png" if several else show)
        print(
            f"{src}: {len(layout.lines)} lines, skew {layout.skew_degrees:+.1f} deg -> {target}",
            file=sys.stderr,
        )
    if failed:
        print(f"{len(failed)} of {len(sources)} images or pages could not be read", file=sys.stderr)
    return 1 if len(failed) == len(sources) else 0
