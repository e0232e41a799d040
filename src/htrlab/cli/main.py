"""The ``htrlab`` command. Subcommands live in ``cli/<verb>.py`` with ``add_parser()`` and ``run(args)``;
torch is imported only by the subcommands that need it, so ``htrlab --help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import htrlab
from htrlab.errors import HTRError, ImageReduced

COMMANDS = {
    "data": "htrlab.cli.data",
    "train": "htrlab.cli.train",
    "evaluate": "htrlab.cli.evaluate",
    "recognize": "htrlab.cli.recognize",
    "segment": "htrlab.cli.segment",
    "models": "htrlab.cli.models",
    "export": "htrlab.cli.export",
    "synth": "htrlab.cli.synth",
    "degrade": "htrlab.cli.degrade",
    "robustness": "htrlab.cli.robustness",
    "benchmark": "htrlab.cli.benchmark",
    "lm": "htrlab.cli.lm",
    "serve": "htrlab.cli.serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="htrlab", description="Handwritten text recognition of English.")
    parser.add_argument("--version", action="version", version=f"htrlab {htrlab.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 runtime failure, 2 usage or config error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse exits on --help (0) and usage errors (2)
        return int(exc.code or 0)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _notes_on_one_line(args.command, warnings.showwarning)
            return int(args.func(args))
    except HTRError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"htrlab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (
        OSError
    ) as exc:  # a file or folder the system refused (full disk, permissions, ...): named, no traceback
        if args.debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"htrlab {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"htrlab {args.command}: interrupted", file=sys.stderr)
        return 130


def _notes_on_one_line(command: str, default: Any) -> Any:
    """htrlab's own notes (an image read at a reduced size, ...) as one line on stderr, above any progress bar;
    other libraries' warnings as Python shows them."""

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ImageReduced):
            from tqdm import tqdm

            tqdm.write(f"htrlab {command}: note: {message}", file=sys.stderr)
        else:
            default(message, category, *args, **kwargs)

    return show


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":  # `python -m htrlab.cli.main` (used under torchrun)
    entry()
