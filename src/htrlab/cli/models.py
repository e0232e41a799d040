"""``htrlab models [--json]``: the registered architectures with their parameter counts (from
:mod:`htrlab.models.catalog`, so the command starts at once)."""

from __future__ import annotations

import argparse

from htrlab.cli.common import dumps, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model architectures")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--classes", type=int, default=100, help="output classes assumed for the counts (default 100)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from htrlab.models.catalog import CATALOG  # no PyTorch: the counts are stored, and checked by the tests

    rows = [
        {"name": name, "params": entry.params(args.classes), "description": entry.description}
        for name, entry in sorted(CATALOG.items())
    ]
    if args.json:
        write_output(dumps(rows), None)
    else:
        write_output("\n".join(f"{r['name']:<20} {r['params']:>12,}  {r['description']}" for r in rows), None)
    return 0
