"""``htrlab segment IMAGE... -o OUT``: find the text lines of pages, write PAGE-XML or ALTO (no recognition)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from htrlab.cli.common import (
    add_input_options,
    add_on_error,
    add_orientation_option,
    add_segmenter_options,
    check_show,
    check_writable,
    page_progress,
    segment_config,
    show_path,
    write_layout_xml,
    xml_targets,
)
from htrlab.data.documents import input_pages


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="find the text lines of page images; write PAGE-XML or ALTO")
    p.add_argument("images", nargs="+", help="images, folders of them, multi-page TIFFs or PDFs (every page)")
    p.add_argument(
        "-o", "--output", required=True, help="XML file (one image) or folder (one file per image)"
    )
    p.add_argument("--format", choices=["page-xml", "alto"], default="page-xml")
    p.add_argument("--show", help="PNG with the found lines drawn (a folder for several images)")
    add_orientation_option(
        p,
        "turn the image clockwise by this many degrees before finding its lines, or auto: a page whose "
        "lines run down is turned a quarter, and a page the recogniser (-m) reads better upside down a half; "
        "the lines are given in the coordinates of the image as it is, the turn as the page's orientation",
    )
    p.add_argument(
        "-m",
        "--model",
        default="default",
        help="recogniser for --orientation auto's upside-down check (default: the bundled model)",
    )
    add_input_options(p)
    add_segmenter_options(p)
    add_on_error(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from htrlab.data.images import load_gray
    from htrlab.data.preprocess import preprocess
    from htrlab.errors import DataError
    from htrlab.reading.engines import load_engine
    from htrlab.reading.predict import predict
    from htrlab.segment.draw import draw_layout
    from htrlab.segment.orient import oriented_line_cuts

    sources, failed = input_pages([Path(p) for p in args.images], args.on_error)
    for src, problem in failed.items():
        print(f"{src}: {problem}", file=sys.stderr)
    out = Path(args.output)
    single = len(sources) == 1 and out.suffix.lower() == ".xml"
    targets = {sources[0]: out} if single else xml_targets(sources, out)
    check_writable(out, "-o", folder=not single)
    check_show(args.show, len(sources) > 1)
    cfg = segment_config(args)
    engine = load_engine(args.model, "auto", 0) if args.orientation == "auto" else None

    def read(crops: list[Any]) -> list[Any]:
        assert engine is not None
        lines = [preprocess(c, engine.preprocess, "(orientation check)") for c in crops]
        return predict(engine, engine.charset, lines)

    for src in page_progress(sources):
        if src in failed:
            continue
        try:
            gray = load_gray(src.path, src.page, args.pdf_dpi)
            found = oriented_line_cuts(
                gray, "page", cfg, str(src), "outline", args.orientation, read if engine else None
            )
            layout = found.layout
        except DataError as exc:
            if args.on_error == "error":
                raise
            tqdm.write(f"{src}: {exc}", file=sys.stderr)
            failed[src] = str(exc)
            continue
        target = targets[src]
        write_layout_xml(args.format, src, layout, gray, target)
        if args.show:
            draw_layout(gray, layout, show_path(args.show, src.stem, len(sources) > 1))
        turned = f", turned {90 * found.quarter_turns} deg clockwise" if found.quarter_turns else ""
        tqdm.write(
            f"{src}: {len(layout.lines)} lines, skew {layout.skew_degrees:+.1f} deg{turned} -> {target}",
            file=sys.stderr,
        )
    if failed:
        print(f"{len(failed)} of {len(sources)} images or pages could not be read", file=sys.stderr)
    return 1 if len(failed) == len(sources) else 0
