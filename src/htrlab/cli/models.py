"""``htrlab models [--json]``: the registered architectures with their parameter counts."""

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

    import torch

    from htrlab.models.registry import build_model, count_parameters, get_spec, model_names

    rows = []
    for name in model_names():
        spec = get_spec(name)
        try:
            with torch.device("meta"):  # sizes only: no memory is spent on the weights of the large models
                params = count_parameters(build_model(name, args.classes))
        except (
            RuntimeError
        ):  # models converted from ONNX copy real weights while building: build them plainly
            params = count_parameters(build_model(name, args.classes))
        rows.append({"name": name, "params": params, "description": spec.description})
    if args.json:
        write_output(dumps(rows), None)
    else:
        write_output("\n".join(f"{r['name']:<20} {r['params']:>12,}  {r['description']}" for r in rows), None)
    return 0
