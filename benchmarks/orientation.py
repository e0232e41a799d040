"""Benchmark: pages turned sideways or upside down, as ``recognize --orientation auto`` finds them.

    python benchmarks/orientation.py --splits val,test --synthetic 12 --json runs/orientation.json

Every page is skewed by a random angle within ``--max-skew`` degrees (as a scan is), then turned by 0, 90, 180
and 270 degrees clockwise, and ``htrlab.segment.orient.oriented_line_cuts`` decides how to turn it back, as
``recognize`` does (bundled line detector, line crops auto, the model's greedy readings). A decision is right
when the turns add up to a whole turn. Pages: the Hooker letters of ``--splits`` (their whole page images), and
``--synthetic`` rendered pages per style in font families held out of the default model's and the line
detector's training (``synthetic_page``, as in benchmarks/segmentation_synthetic.py): handwriting, printed,
both in capitals only (the case where ascender statistics point the wrong way, see the module docstring), and
both with a dark band along the page's edges, as scans of sheets on a dark ground have.
Also timed, per upright page: finding and cutting its lines with ``--orientation 0`` and with ``auto`` (the
check's cost; ``recognize`` then reuses the check's readings of the outlines when it decodes greedily).
Seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from make_synth_sets import HELD_OUT_HAND, HELD_OUT_HAND_NPM, HELD_OUT_PRINTED, _printed_dir, _split_fonts
from run_facts import run_facts
from segmentation_synthetic import _rotate

from htrlab.data.images import load_gray
from htrlab.data.preprocess import preprocess
from htrlab.read.engines import load_engine
from htrlab.read.predict import predict
from htrlab.segment.lines import SegmentConfig
from htrlab.segment.orient import oriented_line_cuts, turn
from htrlab.synth.pages import synthetic_page
from htrlab.synth.render import font_dirs, load_corpus


def _dark_border(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The page with a dark band along its edges, as a scan of a sheet on a dark ground shows it (0.5-2 % of
    the shorter side wide)."""
    out = page.copy()
    band = max(2, int(min(page.shape) * rng.uniform(0.005, 0.02)))
    dark = int(rng.integers(10, 70))
    out[:band], out[-band:], out[:, :band], out[:, -band:] = dark, dark, dark, dark
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--splits", default="val,test", help="Hooker splits whose pages are used ('' for none)")
    ap.add_argument("--synthetic", type=int, default=12, help="rendered pages per style")
    ap.add_argument("--model", default="default")
    ap.add_argument("--max-skew", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default="../shared/data/text/brown.txt")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(5)
    styles: dict[str, list[np.ndarray]] = {}
    splits = {}
    root = Path(args.data)
    wanted = [s for s in args.splits.split(",") if s]
    for row in (root / "splits.tsv").read_text(encoding="utf-8").splitlines()[1:] if wanted else []:
        page, split = row.split("\t")
        splits[page] = split
    for split in wanted:
        pages = sorted(p for p, s in splits.items() if s == split)
        styles[f"Hooker {split}"] = [load_gray(root / "pages" / f"{p}.jpg") for p in pages]
    if args.synthetic:
        _, hand = _split_fonts(font_dirs()[-1], HELD_OUT_HAND + HELD_OUT_HAND_NPM)
        _, printed = _split_fonts(_printed_dir(), HELD_OUT_PRINTED)
        corpus = load_corpus([args.corpus], max_lines=20000)
        capitals = [t.upper() for t in corpus]
        for name, fonts, text in (
            ("handwriting (held-out families)", hand, corpus),
            ("printed (held-out families)", printed, corpus),
            ("handwriting, capitals only", hand, capitals),
            ("printed, capitals only", printed, capitals),
        ):
            styles[name] = [synthetic_page(rng, fonts, text)[0] for _ in range(args.synthetic)]
        for name, fonts in (("handwriting, dark scan border", hand), ("printed, dark scan border", printed)):
            styles[name] = [
                _dark_border(synthetic_page(rng, fonts, corpus)[0], rng) for _ in range(args.synthetic)
            ]
    engine = load_engine(args.model, "auto", args.threads)
    cfg = SegmentConfig()

    def read(crops: list[np.ndarray]) -> list:
        return predict(engine, engine.charset, [preprocess(c, engine.preprocess) for c in crops])

    rows = []
    for style, pages in styles.items():
        right = {0: 0, 90: 0, 180: 0, 270: 0}
        seconds: dict[str, list[float]] = {"0": [], "auto": []}
        for page in pages:
            skewed, _ = _rotate(page, [], float(rng.uniform(-args.max_skew, args.max_skew)))
            t0 = time.perf_counter()
            oriented_line_cuts(skewed, "auto", cfg, style, "auto", "0", read)
            seconds["0"].append(time.perf_counter() - t0)
            for k in range(4):
                t0 = time.perf_counter()
                found = oriented_line_cuts(turn(skewed, k), "auto", cfg, style, "auto", "auto", read)
                if k == 0:
                    seconds["auto"].append(time.perf_counter() - t0)
                right[90 * k] += (k + found.quarter_turns) % 4 == 0
        n = len(pages)
        row = {
            "style": style,
            "pages": n,
            "right_by_turn": {str(d): right[d] / n for d in right},
            "right": sum(right.values()) / (4 * n),
            # finding and cutting the lines of an upright page, median: as it is, and with the orientation check
            "seconds_per_upright_page": {o: float(np.median(v)) for o, v in seconds.items()},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({**run_facts(), "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
