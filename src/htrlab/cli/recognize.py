"""``htrlab recognize [-m CHECKPOINT] IMAGE...``: text of line images, with confidences."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from htrlab.cli.common import (
    add_decoder_options,
    add_engine_option,
    add_on_error,
    add_segmenter_options,
    make_decoder,
    segment_config,
    write_output,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recognize",
        help="read images: words, lines, paragraphs or pages (default: the bundled example lines)",
    )
    p.add_argument("images", nargs="*", help="images; none = the bundled examples")
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
        help="text: PATH<TAB>TEXT<TAB>CONFIDENCE per line read; jsonl: one object per image with its lines, "
        "boxes, baselines and confidences; page-xml / alto: one XML file per image (into -o DIR)",
    )
    p.add_argument(
        "--show", help="PNG with the found lines and their text drawn (a folder for several images)"
    )
    p.add_argument(
        "--line-crop",
        choices=["auto", "baseline", "polygon"],
        default="auto",
        help="how the found lines of a page are cut out: baseline (a band around the baseline, straightened, "
        "as the default model's training lines of letters), polygon (the line's outline, upright, trimmed), "
        "or auto: read the page both ways and keep the way the model is more confident of (docs/RESULTS.md)",
    )
    p.add_argument(
        "--orientation",
        choices=["auto", "0", "90", "180", "270"],
        default="auto",
        help="turn the image clockwise by this many degrees before reading it, or auto: a page whose lines run "
        "down is turned a quarter, and a page the model reads better upside down a half (images read as one "
        "line or word are taken as they are); EXIF orientation is always applied first",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("-o", "--output", help="write results here instead of stdout (a folder for page-xml/alto)")
    add_decoder_options(p)
    add_segmenter_options(p)
    add_on_error(p)
    p.set_defaults(func=run)


def _show_path(show: str, image: Path, several: bool) -> Path:
    target = Path(show)
    if several or target.is_dir() or not target.suffix:
        return target / f"{image.stem}.lines.png"
    return target


def run(args: argparse.Namespace) -> int:
    from htrlab.bundled import example_images
    from htrlab.data.images import load_gray
    from htrlab.data.preprocess import preprocess
    from htrlab.errors import ConfigError, DataError
    from htrlab.evaluate.engines import load_engine
    from htrlab.evaluate.inference import predict
    from htrlab.segment.orient import oriented_line_cuts
    from htrlab.segment.read import more_confident

    paths = [Path(p) for p in args.images] or example_images()
    if args.format in ("page-xml", "alto") and not args.output:
        raise ConfigError(f"--format {args.format} writes one XML file per image: give -o FOLDER")
    engine = load_engine(args.model, args.engine, args.threads, args.precision)
    decoder = make_decoder(args, engine.charset)
    seg_cfg = segment_config(args)
    pages: dict[Path, tuple[Any, str, Any, int]] = {}
    images: list[Any] = []
    owners: list[tuple[Path, int, int]] = []  # (image, way the lines were cut, line)
    readings: dict[Path, list[list[Any]]] = {}  # image -> way -> its lines read
    failed: dict[Path, str] = {}
    for p in paths:
        try:
            gray = load_gray(p)

            def read(crops: list[Any], p: Path = p) -> list[Any]:
                lines = [preprocess(c, engine.preprocess, f"{p} (orientation)") for c in crops]
                return predict(engine, engine.charset, lines, args.batch_size)

            found = oriented_line_cuts(
                gray, args.layout, seg_cfg, str(p), args.line_crop, args.orientation, read
            )
            if found.quarter_turns and args.orientation == "auto":
                print(
                    f"{p}: read turned {90 * found.quarter_turns} degrees clockwise "
                    "(--orientation 0 reads it as it is)",
                    file=sys.stderr,
                )
            # the lines the orientation check read greedily are not read again when decoding is greedy too
            known = found.readings if decoder is None else {}
            ways = [known.get(way) or [None] * len(cut) for way, cut in enumerate(found.cuts)]
            todo = [
                (way, k, preprocess(c, engine.preprocess, f"{p} line {k + 1}"))
                for way, cut in enumerate(found.cuts)
                for k, c in enumerate(cut)
                if ways[way][k] is None
            ]
        except DataError as exc:
            if args.on_error == "error":
                raise DataError(
                    f"{exc} (use --on-error skip to read the other images and report this one)"
                ) from exc
            failed[p] = str(exc)
            continue
        pages[p] = (found.layout, found.mode, gray, 90 * found.quarter_turns)
        readings[p] = ways
        owners += [(p, way, k) for way, k, _ in todo]
        images += [line for _, _, line in todo]
    decoded = predict(engine, engine.charset, images, args.batch_size, decoder=decoder) if images else []
    for (p, way, k), d in zip(owners, decoded):
        readings[p][way][k] = d
    for p, ways in readings.items():
        for line, d in zip(pages[p][0].lines, ways[more_confident(ways)]):
            line.text, line.confidence = d.text, d.confidence
    out: list[str] = []
    for p in paths:
        if p in failed:
            out.append(
                json.dumps({"path": str(p), "error": failed[p]})
                if args.format == "jsonl"
                else f"{p}\tERROR: {failed[p]}"
            )
            continue
        layout, mode, gray, degrees = pages[p]
        if args.show:
            from htrlab.segment.draw import draw_layout

            draw_layout(gray, layout, _show_path(args.show, p, len(paths) > 1))
        if args.format == "jsonl":
            out.append(json.dumps(_as_json(p, layout, mode, degrees), ensure_ascii=False))
        elif args.format == "text":
            out += [f"{p}\t{ln.text}\t{ln.confidence or 0.0:.3f}" for ln in layout.lines]
        else:
            from htrlab.segment.export import write_alto, write_page_xml

            write = write_page_xml if args.format == "page-xml" else write_alto
            target = Path(args.output) / f"{p.stem}.xml"
            rel = os.path.relpath(p.resolve(), target.parent.resolve())
            out.append(str(write(layout, rel, target)))
    if args.format in ("page-xml", "alto"):
        print("\n".join(out), file=sys.stderr)
    else:
        write_output("\n".join(out), args.output)
    if failed:
        print(
            f"{len(failed)} of {len(paths)} images could not be read (listed in the output)", file=sys.stderr
        )
    return 1 if failed and not pages else 0


def _as_json(path: Path, layout: Any, mode: str, degrees: int = 0) -> dict[str, Any]:
    lines = layout.lines
    confs = [ln.confidence for ln in lines if ln.confidence is not None]
    return {
        "path": str(path),
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
