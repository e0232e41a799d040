"""Benchmark: one line or several? ``recognize --layout auto`` on line images and on short paragraphs.

    python benchmarks/auto_layout.py --splits val --synthetic 40 --json runs/auto-layout-val.json

``--layout auto`` (the default) decides per image whether it is one line or a page of lines. This measures the
decision where it is hardest, on images of one to three lines, and what it costs in CER:

- Hooker line crops of ``--splits`` as the dataset cuts them (bands around the baseline, with pieces of the
  lines above and below), and paragraphs of 2 and 3 consecutive lines cut from the same pages (the box of their
  outlines and 10 px around it; every 4th line starts one);
- with ``--synthetic N``: N rendered pages per style in font families held out of the model's and the line
  detector's training (``synthetic_page``; handwriting, printed), cut into single lines and 2-3 line
  paragraphs the same way, each with a random margin of 0.2-0.8 of the line spacing above and below (so that
  neighbouring lines show in it, as in a crop of a real page).

Every image is read as ``recognize`` reads it (bundled model, greedy, ``oriented_line_cuts`` with orientation
auto, line crop auto, the more confident way of cutting kept), and also with the layout forced to ``line``
(for line images) or ``page`` (for paragraphs). CER counts the lines read joined by spaces against the
lines' texts joined by spaces. Seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from make_synth_sets import HELD_OUT_HAND, HELD_OUT_HAND_NPM, HELD_OUT_PRINTED, _printed_dir, _split_fonts
from rapidfuzz.distance import Levenshtein
from run_facts import run_facts

from htrlab.data.dataset import open_dataset
from htrlab.data.images import load_gray
from htrlab.data.preprocess import preprocess
from htrlab.read.engines import load_engine
from htrlab.read.predict import predict
from htrlab.segment.lines import SegmentConfig
from htrlab.segment.orient import oriented_line_cuts
from htrlab.segment.read import more_confident
from htrlab.synth.pages import synthetic_page
from htrlab.synth.render import font_dirs, load_corpus


def _box_crop(gray: np.ndarray, boxes: list[np.ndarray], above: float, below: float) -> np.ndarray:
    pts = np.concatenate(boxes)
    x0, y0 = np.maximum(pts.min(0) - np.array([10, above]), 0).astype(int)
    x1, y1 = (pts.max(0) + np.array([10, below])).astype(int)
    return np.array(gray[y0 : y1 + 1, x0 : x1 + 1])


def hooker_sets(root: Path, split: str) -> dict[str, list[tuple[np.ndarray, str]]]:
    ds = open_dataset(str(root))
    samples = [s for s in ds.samples if s.split == split]
    lines = [(s.load_image(), s.text) for s in samples]
    pages: dict[Path, list[Any]] = defaultdict(list)
    for s in samples:
        if s.polygon is not None:
            pages[s.image_path].append(s)
    paragraphs = []
    for path, found in sorted(pages.items()):
        gray = load_gray(path)
        found = sorted(found, key=lambda s: float(s.polygon[:, 1].mean()))
        for n in (2, 3):
            for k in range(0, len(found) - n + 1, 4):
                group = found[k : k + n]
                crop = _box_crop(gray, [s.polygon for s in group], 10, 10)
                paragraphs.append((crop, " ".join(s.text for s in group)))
    return {f"Hooker {split} line crops": lines, f"Hooker {split} paragraphs (2-3 lines)": paragraphs}


def rendered_sets(n_pages: int, corpus_path: str) -> dict[str, list[tuple[np.ndarray, str]]]:
    rng = np.random.default_rng(11)
    _, hand = _split_fonts(font_dirs()[-1], HELD_OUT_HAND + HELD_OUT_HAND_NPM)
    _, printed = _split_fonts(_printed_dir(), HELD_OUT_PRINTED)
    corpus = load_corpus([corpus_path], max_lines=20000)
    out: dict[str, list[tuple[np.ndarray, str]]] = {}
    for name, fonts in (("handwriting", hand), ("printed", printed)):
        lines, paragraphs = [], []
        for _ in range(n_pages):
            page, baselines, boxes, texts = synthetic_page(rng, fonts, corpus)
            ys = [float(b[:, 1].mean()) for b in baselines]
            spacing = float(np.median(np.diff(sorted(ys)))) if len(ys) > 1 else 40.0
            for k in range(len(boxes)):
                m = rng.uniform(0.2, 0.8, 2) * spacing
                lines.append((_box_crop(page, [boxes[k]], m[0], m[1]), texts[k]))
            for n in (2, 3):
                for k in range(0, len(boxes) - n + 1, 4):
                    m = rng.uniform(0.2, 0.8, 2) * spacing
                    crop = _box_crop(page, boxes[k : k + n], m[0], m[1])
                    paragraphs.append((crop, " ".join(texts[k : k + n])))
        out[f"rendered {name} lines (held-out families)"] = lines
        out[f"rendered {name} paragraphs (2-3 lines)"] = paragraphs
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--splits", default="val", help="Hooker splits ('' for none)")
    ap.add_argument("--synthetic", type=int, default=40, help="rendered pages per style (0: none)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default="../shared/data/text/brown.txt")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets: dict[str, list[tuple[np.ndarray, str]]] = {}
    for split in [s for s in args.splits.split(",") if s]:
        sets.update(hooker_sets(Path(args.data), split))
    if args.synthetic:
        sets.update(rendered_sets(args.synthetic, args.corpus))
    engine = load_engine(args.model, "auto", args.threads)
    cfg = SegmentConfig()

    def read(crops: list[np.ndarray]) -> list:
        return predict(engine, engine.charset, [preprocess(c, engine.preprocess) for c in crops])

    def reading(gray: np.ndarray, layout: str) -> tuple[str, str]:
        found = oriented_line_cuts(gray, layout, cfg, "bench", "auto", "auto", read)
        ways = []
        for way, cut in enumerate(found.cuts):
            have = list(found.readings.get(way) or [None] * len(cut))
            todo = [k for k, r in enumerate(have) if r is None]
            for k, d in zip(todo, read([cut[k] for k in todo]) if todo else []):
                have[k] = d
            ways.append(have)
        best = ways[more_confident(ways)] if ways else []
        return found.mode, " ".join(d.text for d in best)

    rows = []
    for name, items in sets.items():
        forced = "page" if "paragraphs" in name else "line"
        modes: dict[str, int] = defaultdict(int)
        errors = {"auto": 0, forced: 0}
        chars = 0
        for gray, truth in items:
            mode, text = reading(gray, "auto")
            modes[mode] += 1
            errors["auto"] += Levenshtein.distance(text, truth)
            errors[forced] += Levenshtein.distance(reading(gray, forced)[1], truth)
            chars += len(truth)
        row = {
            "set": name,
            "images": len(items),
            "chars": chars,
            "read_as": dict(modes),
            "cer_auto": 100 * errors["auto"] / max(chars, 1),
            f"cer_{forced}": 100 * errors[forced] / max(chars, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**run_facts(), "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
