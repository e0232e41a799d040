"""``htrlab segment IMAGE... -o OUT``: find the text lines of pages, write PAGE-XML or ALTO (no recognition)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

    from htrlab.decoding.config import DecoderConfig
    from htrlab.read import Reader, page_sources
    from htrlab.read.engines import load_engine
    from htrlab.segment.draw import draw_layout

    pages, failed = input_pages([Path(p) for p in args.images], args.on_error)
    for src, problem in failed.items():
        print(f"{src}: {problem}", file=sys.stderr)
    out = Path(args.output)
    single = len(pages) == 1 and out.suffix.lower() == ".xml"
    targets = {str(pages[0]): out} if single else {str(k): v for k, v in xml_targets(pages, out).items()}
    check_writable(out, "-o", folder=not single)
    check_show(args.show, len(pages) > 1)
    # the recogniser only checks which way up a page is read better (--orientation auto)
    engine = load_engine(args.model, "auto", 0) if args.orientation == "auto" else None
    reader = Reader(engine, None, DecoderConfig(decoder="greedy"), segment_config(args))
    readable = {str(p): p for p in pages if p not in failed}
    n_bad = len(failed)
    found = reader.find_lines(
        page_sources(list(readable.values()), pdf_dpi=args.pdf_dpi),
        args.orientation,
        args.on_error,
        progress=page_progress,
    )
    for page in found:
        if page.error is not None or page.image is None:
            tqdm.write(f"{page.source}: {page.error}", file=sys.stderr)
            n_bad += 1
            continue
        src, target, layout = readable[page.source], targets[page.source], page.layout
        write_layout_xml(args.format, src, layout, page.image, target)
        if args.show:
            draw_layout(page.image, layout, show_path(args.show, src.stem, len(pages) > 1))
        turned = f", turned {page.rotation} deg clockwise" if page.rotation else ""
        tqdm.write(
            f"{page.source}: {len(layout.lines)} lines, skew {layout.skew_degrees:+.1f} deg{turned} -> {target}",
            file=sys.stderr,
        )
    if n_bad:
        print(f"{n_bad} of {len(pages)} images or pages could not be read", file=sys.stderr)
    return 1 if n_bad == len(pages) else 0
