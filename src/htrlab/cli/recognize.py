"""``htrlab recognize [-m CHECKPOINT] IMAGE...``: text of line images, with confidences."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from htrlab.cli.common import add_decoder_options, add_on_error, make_decoder, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recognize", help="read text line images (default: the bundled example lines)")
    p.add_argument("images", nargs="*", help="line images; none = the bundled examples")
    p.add_argument(
        "-m",
        "--model",
        default="default",
        help="checkpoint (.safetensors), ONNX export (.onnx), or 'default' for the bundled model",
    )
    p.add_argument(
        "--engine",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="auto: onnxruntime for .onnx files, PyTorch otherwise",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = library default)")
    p.add_argument("--format", choices=["text", "jsonl"], default="text")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("-o", "--output", help="write results here instead of stdout")
    add_decoder_options(p)
    add_on_error(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from htrlab.bundled import default_checkpoint, example_images
    from htrlab.data.images import load_gray
    from htrlab.data.preprocess import preprocess
    from htrlab.errors import DataError
    from htrlab.evaluate.engines import load_engine
    from htrlab.evaluate.inference import predict

    paths = [Path(p) for p in args.images] or example_images()
    ckpt = default_checkpoint(args.engine) if args.model == "default" else Path(args.model)
    engine = load_engine(ckpt, args.engine, args.threads)
    images, ok_paths, failed = [], [], {}
    for p in paths:
        try:
            images.append(preprocess(load_gray(p), engine.preprocess, str(p)))
            ok_paths.append(p)
        except DataError as exc:
            if args.on_error == "error":
                raise DataError(
                    f"{exc} (use --on-error skip to read the other images and report this one)"
                ) from exc
            failed[p] = str(exc)
    decoder = make_decoder(args, engine.charset)
    decoded = predict(engine, engine.charset, images, args.batch_size, decoder=decoder) if images else []
    preds = dict(zip(ok_paths, decoded))
    out = []
    for p in paths:
        if p in failed:
            out.append(
                json.dumps({"path": str(p), "error": failed[p]})
                if args.format == "jsonl"
                else f"{p}\tERROR: {failed[p]}"
            )
        else:
            d = preds[p]
            out.append(
                json.dumps(
                    {"path": str(p), "text": d.text, "confidence": round(d.confidence, 4)}, ensure_ascii=False
                )
                if args.format == "jsonl"
                else f"{p}\t{d.text}\t{d.confidence:.3f}"
            )
    write_output("\n".join(out), args.output)
    if failed:
        print(
            f"{len(failed)} of {len(paths)} images could not be read (listed in the output)", file=sys.stderr
        )
    return 1 if failed and not preds else 0
