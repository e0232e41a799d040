"""``htrlab recognize [-m CHECKPOINT] IMAGE...``: text of line images, with confidences."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrlab.cli.common import (
    add_decoder_options,
    add_engine_option,
    add_input_options,
    add_on_error,
    add_orientation_option,
    add_segmenter_options,
    check_show,
    check_writable,
    line_crop_choice,
    make_decoder,
    output_stream,
    page_progress,
    segment_config,
    show_path,
    write_layout_xml,
    xml_targets,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recognize",
        help="read images: words, lines, paragraphs or pages (default: the bundled example lines)",
    )
    p.add_argument(
        "images",
        nargs="*",
        help="images, folders of them, multi-page TIFFs or PDFs (every page read); none = the bundled examples",
    )
    p.add_argument(
        "-m",
        "--model",
        default="default",
        help="checkpoint (.safetensors), ONNX export (.onnx), or 'default' for the bundled model",
    )
    add_engine_option(p)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = library default)")
    p.add_argument(
        "--layout",
        choices=["auto", "word", "line", "page"],
        default="auto",
        help="auto: find the lines and read a page / paragraph when there are several, else one line; "
        "word / line: the image is one line; page: always segment",
    )
    p.add_argument(
        "--format",
        choices=["text", "jsonl", "page-xml", "alto"],
        default="text",
        help="text: PATH<TAB>TEXT<TAB>CONFIDENCE per line read (one row with no text for a blank page); "
        "jsonl: one object per image with its lines, boxes, baselines and confidences; page-xml / alto: one "
        "XML file per image (into -o DIR)",
    )
    p.add_argument(
        "--show", help="PNG with the found lines and their text drawn (a folder for several images)"
    )
    p.add_argument(
        "--line-crop",
        type=line_crop_choice(("auto", "band", "outline")),
        metavar="{auto,band,outline}",
        default="auto",
        help="how the found lines of a page are cut out: band (around the baseline, straightened, as htrlab "
        "cuts the lines of PAGE-XML pages), outline (the line's outline, upright, trimmed), "
        "or auto: read the page both ways and keep the way the model is more confident of (docs/RESULTS.md)",
    )
    add_orientation_option(
        p,
        "turn the image clockwise by this many degrees before reading it, or auto: a page whose lines run "
        "down is turned a quarter, and a page the model reads better upside down a half (images read as one "
        "line or word are taken as they are); EXIF orientation is always applied first",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("-o", "--output", help="write results here instead of stdout (a folder for page-xml/alto)")
    add_input_options(p)
    add_decoder_options(p)
    add_segmenter_options(p)
    add_on_error(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from htrlab.bundled import example_images
    from htrlab.data.documents import PageSource
    from htrlab.errors import ConfigError, DataError
    from htrlab.read import Reader, sources_of
    from htrlab.read.engines import load_engine

    xml = args.format in ("page-xml", "alto")
    if xml and not args.output:
        raise ConfigError(f"--format {args.format} writes one XML file per image: give -o FOLDER")
    hint = " (use --on-error skip to read the other images and report this one)"
    try:
        sources = sources_of([Path(p) for p in args.images] or example_images(), args.on_error, args.pdf_dpi)
    except DataError as exc:
        raise DataError(f"{exc}{hint}") from exc
    pages = {s.label: PageSource(s.path, s.page) for s in sources if s.path is not None}
    targets = xml_targets(list(pages.values()), Path(args.output)) if xml else {}
    if xml:
        check_writable(args.output, "-o", folder=True)
    check_show(args.show, len(sources) > 1)
    engine = load_engine(args.model, args.engine, args.threads, args.precision)
    decoder, settings = make_decoder(args, engine.charset)
    reader = Reader(engine, decoder, settings, segment_config(args), args.batch_size)
    several = len(sources) > 1
    n_read = 0
    with output_stream(None if xml else args.output) as out:
        sink = sys.stderr if xml else out
        found = reader.read_sources(
            sources,
            args.layout,
            args.line_crop,
            args.orientation,
            args.on_error,
            keep_images=bool(args.show) or xml,
            progress=page_progress,
            note=lambda text: tqdm.write(text, file=sys.stderr),
        )
        try:
            for page in found:
                src = pages[page.source]  # every source here is a file or a page of one
                if page.error is not None:
                    row = page.to_json() if args.format == "jsonl" else f"{page.source}\tERROR: {page.error}"
                    sink.write(row + "\n")
                    continue
                n_read += 1
                if args.show and page.image is not None:
                    from htrlab.segment.draw import draw_layout

                    draw_layout(page.image, page.layout, show_path(args.show, src.stem, several))
                if args.format == "jsonl":
                    sink.write(page.to_json() + "\n")
                elif args.format == "text":
                    rows = [(ln.text, ln.confidence or 0.0) for ln in page.lines] or [
                        ("", 0.0)
                    ]  # blank: a row
                    sink.writelines(f"{page.source}\t{text}\t{conf:.3f}\n" for text, conf in rows)
                else:
                    sink.write(
                        f"{write_layout_xml(args.format, src, page.layout, page.image, targets[src])}\n"
                    )
                sink.flush()
        except DataError as exc:
            raise DataError(f"{exc}{hint}") from exc
    n_failed = len(sources) - n_read
    if n_failed:
        print(
            f"{n_failed} of {len(sources)} images or pages could not be read (listed in the output)",
            file=sys.stderr,
        )
    return 1 if n_failed and not n_read else 0
