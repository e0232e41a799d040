"""``htrlab recognize [-m CHECKPOINT] IMAGE...``: text of line images, with confidences."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from htrlab.cli.common import (
    add_decoder_options,
    add_engine_option,
    add_input_options,
    add_on_error,
    add_orientation_option,
    add_segmenter_options,
    check_show,
    check_writable,
    input_pages,
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


FLUSH_LINES = 512  # lines gathered from several pages are decoded together, then those pages are written out


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from htrlab.bundled import example_images
    from htrlab.data.images import load_gray
    from htrlab.data.preprocess import preprocess
    from htrlab.errors import ConfigError, DataError
    from htrlab.evaluate.engines import load_engine
    from htrlab.evaluate.inference import predict
    from htrlab.segment.orient import oriented_line_cuts
    from htrlab.segment.read import more_confident

    xml = args.format in ("page-xml", "alto")
    if xml and not args.output:
        raise ConfigError(f"--format {args.format} writes one XML file per image: give -o FOLDER")
    hint = " (use --on-error skip to read the other images and report this one)"
    try:
        sources, failed = input_pages([Path(p) for p in args.images] or example_images(), args.on_error)
    except DataError as exc:
        raise DataError(f"{exc}{hint}") from exc
    targets = xml_targets(sources, Path(args.output)) if xml else {}
    if xml:
        check_writable(args.output, "-o", folder=True)
    check_show(args.show, len(sources) > 1)
    engine = load_engine(args.model, args.engine, args.threads, args.precision)
    decoder = make_decoder(args, engine.charset)
    seg_cfg = segment_config(args)
    several = len(sources) > 1

    # Pages are read in chunks of about FLUSH_LINES lines: lines of several pages share batches, and each
    # chunk's results are written before the next is read (memory stays bounded on a folder of thousands of
    # pages, and what was read is kept if a later page stops the run).
    pending: list[Any] = []  # sources in input order since the last flush
    pages: dict[Any, tuple[Any, str, Any, int]] = {}
    readings: dict[Any, list[list[Any]]] = {}  # page -> way the lines were cut -> its lines read
    owners: list[tuple[Any, int, int]] = []  # (page, way, line) of each line still to decode
    images: list[Any] = []
    n_read = 0

    def flush(sink: Any) -> None:
        nonlocal n_read
        decoded = predict(engine, engine.charset, images, args.batch_size, decoder=decoder) if images else []
        for (src, way, k), d in zip(owners, decoded):
            readings[src][way][k] = d
        for src in pending:
            if src in failed:
                sink.write(
                    (
                        json.dumps({"path": str(src.path), "page": src.page, "error": failed[src]})
                        if args.format == "jsonl"
                        else f"{src}\tERROR: {failed[src]}"
                    )
                    + "\n"
                )
                continue
            layout, mode, gray, degrees = pages.pop(src)
            ways = readings.pop(src)
            for line, d in zip(layout.lines, ways[more_confident(ways)]):
                line.text, line.confidence = d.text, d.confidence
            n_read += 1
            if args.show:
                from htrlab.segment.draw import draw_layout

                draw_layout(gray, layout, show_path(args.show, src.stem, several))
            if args.format == "jsonl":
                sink.write(json.dumps(_as_json(src, layout, mode, degrees), ensure_ascii=False) + "\n")
            elif args.format == "text":
                rows = [(ln.text, ln.confidence or 0.0) for ln in layout.lines] or [("", 0.0)]  # blank: a row
                sink.writelines(f"{src}\t{text}\t{conf:.3f}\n" for text, conf in rows)
            else:
                sink.write(f"{write_layout_xml(args.format, src, layout, gray, targets[src])}\n")
            sink.flush()
        pending.clear()
        owners.clear()
        images.clear()

    with output_stream(None if xml else args.output) as out:
        sink = sys.stderr if xml else out
        for src in page_progress(sources):
            pending.append(src)
            if src in failed:
                continue
            try:
                gray = load_gray(src.path, src.page, args.pdf_dpi)

                def read(crops: list[Any], name: str = str(src)) -> list[Any]:
                    lines = [preprocess(c, engine.preprocess, f"{name} (orientation)") for c in crops]
                    return predict(engine, engine.charset, lines, args.batch_size)

                found = oriented_line_cuts(
                    gray, args.layout, seg_cfg, str(src), args.line_crop, args.orientation, read
                )
                if found.quarter_turns and args.orientation == "auto":
                    tqdm.write(
                        f"{src}: read turned {90 * found.quarter_turns} degrees clockwise "
                        "(--orientation 0 reads it as it is)",
                        file=sys.stderr,
                    )
                # the lines the orientation check read greedily are not read again when decoding is greedy too
                known = found.readings if decoder is None else {}
                ways = [known.get(way) or [None] * len(cut) for way, cut in enumerate(found.cuts)]
                todo = [
                    (way, k, preprocess(c, engine.preprocess, f"{src} line {k + 1}"))
                    for way, cut in enumerate(found.cuts)
                    for k, c in enumerate(cut)
                    if ways[way][k] is None
                ]
            except DataError as exc:
                if args.on_error == "error":
                    pending.pop()
                    flush(sink)  # the pages before this one are written out first
                    raise DataError(f"{exc}{hint}") from exc
                failed[src] = str(exc)
                continue
            pages[src] = (found.layout, found.mode, gray, 90 * found.quarter_turns)
            readings[src] = ways
            owners.extend((src, way, k) for way, k, _ in todo)
            images.extend(line for _, _, line in todo)
            if len(images) >= FLUSH_LINES:
                flush(sink)
        flush(sink)
    if failed:
        print(
            f"{len(failed)} of {len(sources)} images or pages could not be read (listed in the output)",
            file=sys.stderr,
        )
    return 1 if failed and not n_read else 0


def _as_json(src: Any, layout: Any, mode: str, degrees: int = 0) -> dict[str, Any]:
    lines = layout.lines
    confs = [ln.confidence for ln in lines if ln.confidence is not None]
    return {
        "path": str(src.path),
        "page": src.page,
        "layout": mode,
        "rotation": degrees,
        "text": "\n".join(ln.text for ln in lines),
        "confidence": round(min(confs), 4) if confs else 0.0,
        "width": layout.width,
        "height": layout.height,
        "lines": [
            {
                "id": ln.id,
                "text": ln.text,
                "confidence": round(ln.confidence or 0.0, 4),
                "box": list(ln.box),
                "polygon": ln.polygon.tolist(),
                "baseline": ln.baseline.tolist(),
            }
            for ln in lines
        ],
    }
