"""``htrlab serve``: the REST API (``POST /v1/read``) and the web page (``/``) on one loaded model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from htrlab.cli.common import add_decoder_options, add_engine_option, add_segmenter_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    from htrlab.serve.settings import ServeSettings

    d = ServeSettings()
    p = sub.add_parser("serve", help="a web page and a REST API for reading images (FastAPI + uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "-m", "--model", default="default", help="checkpoint, ONNX export, or 'default' (the bundled model)"
    )
    add_engine_option(p)
    p.add_argument("--threads", type=int, default=0, help="CPU threads of the model (0 = library default)")
    p.add_argument(
        "--workers", type=int, default=1, help="threads reading requests (each batches all waiting)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (for a shared deployment)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb)
    p.add_argument("--max-pixels", type=int, default=d.max_pixels)
    p.add_argument("--max-pdf-pages", type=int, default=d.max_pdf_pages)
    p.add_argument("--request-timeout", type=float, default=d.request_timeout_s, help="seconds")
    p.add_argument("--queue-length", type=int, default=d.queue_length, help="requests waiting; more get 503")
    add_decoder_options(p)
    add_segmenter_options(p)
    p.set_defaults(func=run)


def build_app(args: argparse.Namespace) -> Any:
    """The application ``run`` serves (also what tests call)."""
    from dataclasses import replace

    from htrlab.cli.common import make_decoder, segment_config
    from htrlab.errors import ConfigError
    from htrlab.read import Reader
    from htrlab.read.engines import load_engine
    from htrlab.serve.app import create_app
    from htrlab.serve.settings import ServeSettings

    for name in (
        "max_upload_mb",
        "max_pixels",
        "max_pdf_pages",
        "request_timeout",
        "queue_length",
        "workers",
    ):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    settings = ServeSettings(
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        max_pdf_pages=args.max_pdf_pages,
        request_timeout_s=args.request_timeout,
        queue_length=args.queue_length,
        token=args.token or None,
    )
    engine = load_engine(args.model, args.engine, args.threads)
    decoder, cfg = make_decoder(args, engine.charset)
    seg = segment_config(args)
    readers = {
        "default": Reader(engine, decoder, cfg, seg, args.batch_size),
        "greedy": Reader(engine, None, replace(cfg, decoder="greedy"), seg, args.batch_size),
    }
    return create_app(readers, settings, str(args.model), args.workers)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    app = build_app(args)
    where = f"http://{args.host}:{args.port}/"
    print(f"htrlab serve: reading with {args.model} at {where} (API docs: {where}docs)", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        print("htrlab serve: note: listening beyond this machine without --token", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
