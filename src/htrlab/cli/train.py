"""``htrlab train -c config.yaml [--set key=value ...] [--resume]``."""

from __future__ import annotations

import argparse

from htrlab.cli.common import dumps, write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recognizer (runs under torchrun for several processes/GPUs)")
    p.add_argument("-c", "--config", help="YAML config (sections: data, preprocess, augment, model, train)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=3e-4 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in train.out_dir where it stopped")
    p.add_argument(
        "--distill-from",
        metavar="TEACHER",
        help="knowledge distillation from this teacher checkpoint (sets train.distill_from)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from htrlab.config import to_dict
    from htrlab.train.loop import load_run_config, train

    overrides = list(args.overrides)
    if args.distill_from:
        overrides.append(f"train.distill_from={args.distill_from}")
    cfg = load_run_config(args.config, overrides)
    if args.print_config:
        write_output(yaml.safe_dump(to_dict(cfg), sort_keys=False), None)
        return 0
    summary = train(cfg, resume=args.resume)
    write_output(dumps(summary), None)
    return 0
