"""``htrlab degrade IN... -o OUT --op NAME --severity 1..5 --seed N`` (and ``--list-ops``, ``--preview``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrlab.cli.common import write_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("degrade", help="damage images (occlusion, stains, missing strokes, blur, noise, ...)")
    p.add_argument("inputs", nargs="*", help="images to damage")
    p.add_argument("-o", "--output", help="output folder (or the PNG for --preview)")
    p.add_argument("--op", default="random", help="operation name (see --list-ops) or 'random'")
    p.add_argument("--severity", type=int, default=3, help="1 (light) .. 5 (heavy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--list-ops", action="store_true", help="print the operations and their severity scales")
    p.add_argument(
        "--preview",
        action="store_true",
        help="write one PNG strip: the first input under every operation at severities 1, 3, 5",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from htrlab.data.images import load_gray
    from htrlab.degrade import SEVERITY_TABLE, apply_op, list_ops
    from htrlab.errors import ConfigError, DataError

    if args.list_ops:
        rows = [
            f"{name:<18} {q} : {', '.join(f'{v:g}' for v in vals)}"
            for name, (q, vals) in SEVERITY_TABLE.items()
        ]
        write_output(
            "\n".join([*rows, "random             1-3 of the above, each at a severity up to the given one"]),
            None,
        )
        return 0
    if not args.inputs:
        raise ConfigError("give input images (or --list-ops)")
    if not args.output:
        raise ConfigError("give -o OUTPUT (a folder, or a .png file with --preview)")
    if args.op not in list_ops():
        raise ConfigError(f"unknown operation '{args.op}'; known: {', '.join(list_ops())}")
    if args.preview:
        img = load_gray(args.inputs[0])
        strip: list[tuple[str, np.ndarray]] = [("original", img)]
        for op in list_ops():
            for sev in (1, 3, 5):
                strip.append((f"{op} {sev}", apply_op(img, op, sev, np.random.default_rng([args.seed, sev]))))
        label_w, gap = 150, 4
        width = label_w + img.shape[1]
        height = sum(r.shape[0] + gap for _, r in strip)
        canvas = Image.new("L", (width, height), 255)
        from PIL import ImageDraw

        draw = ImageDraw.Draw(canvas)
        y = 0
        for label, r in strip:
            canvas.paste(Image.fromarray(r), (label_w, y))
            draw.text((4, y + r.shape[0] // 2 - 6), label, fill=0)
            y += r.shape[0] + gap
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(out)
        print(f"wrote {out}", file=sys.stderr)
        return 0
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for i, path in enumerate(args.inputs):
        try:
            img = load_gray(path)
        except DataError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        # one generator per input: the result of an image does not depend on the others given with it
        rng = np.random.default_rng([args.seed, i])
        damaged = apply_op(img, args.op, args.severity, rng)
        Image.fromarray(damaged).save(out_dir / (Path(path).stem + ".png"))
        txt = Path(path).with_suffix(".txt")
        if txt.is_file():  # keep transcriptions beside the damaged images, so the folder is a dataset
            (out_dir / txt.name).write_text(txt.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {len(args.inputs) - failed} images to {out_dir} ({failed} unreadable)", file=sys.stderr)
    return 1 if failed else 0
