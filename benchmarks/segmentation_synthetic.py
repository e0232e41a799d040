"""Benchmark: line finding and page reading on rendered pages in fonts held out of all training.

    python benchmarks/segmentation_synthetic.py --pages 30 --segmenter learned --json runs/seg-synth-learned.json

Pages are rendered by ``htrlab.synth.pages.synthetic_page`` (Brown corpus text, random size, spacing,
margins, indentation, short right-aligned lines, shaded noisy paper), each rotated by a random angle within
``--max-skew`` degrees, in three styles whose font families were held out of the default model's training and
of the line detector's: handwriting (Debian and npm families of benchmarks/make_synth_sets.py) and printed.
Measured per style: detection F1 at IoU >= 0.5 against each line's text box, the share of pages whose line
count is right, and the end-to-end page CER (``recognize --layout page`` as a user runs it, the lines joined in
htrlab's reading order, against the rendered lines joined in order; ``--line-crop auto`` as ``recognize``
does it). Seeds are fixed: every segmenter sees the same pages.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from make_synth_sets import HELD_OUT_HAND, HELD_OUT_HAND_NPM, HELD_OUT_PRINTED, _printed_dir, _split_fonts
from run_facts import run_facts

from htrlab.data.preprocess import preprocess
from htrlab.read.engines import load_engine
from htrlab.read.predict import predict
from htrlab.segment.evaluate import DetectionScore, match_lines
from htrlab.segment.lines import SegmentConfig
from htrlab.segment.read import line_cuts, more_confident
from htrlab.synth.pages import synthetic_page
from htrlab.synth.render import font_dirs, load_corpus
from htrlab.text.metrics import count_errors


def _rotate(gray: np.ndarray, polys: list[np.ndarray], angle: float) -> tuple[np.ndarray, list[np.ndarray]]:
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    paper = int(np.median(gray))
    out = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=paper)
    return out, [np.hstack([p, np.ones((len(p), 1))]) @ m.T for p in polys]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=30, help="pages per style")
    ap.add_argument("--segmenter", choices=["learned", "classical"], default="learned")
    ap.add_argument("--line-detector", help="line detector weights (default: the bundled ones)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--max-skew", type=float, default=3.0)
    ap.add_argument("--line-crop", choices=["auto", "band", "outline"], default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default="../shared/data/text/brown.txt")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hand_root = font_dirs()[-1]
    _, hand = _split_fonts(hand_root, HELD_OUT_HAND + HELD_OUT_HAND_NPM)
    _, printed = _split_fonts(_printed_dir(), HELD_OUT_PRINTED)
    styles = {"handwriting (held-out families)": hand, "printed (held-out families)": printed}
    corpus = load_corpus([args.corpus], max_lines=20000)
    engine = load_engine(args.model, "auto", args.threads)
    cfg = SegmentConfig(method=args.segmenter, detector=args.line_detector)
    results = []
    for k, (style, fonts) in enumerate(styles.items()):
        rng = np.random.default_rng(1000 + k)
        total = DetectionScore(0, 0, 0, 0.0)
        refs, hyps, right_count = [], [], 0
        for _ in range(args.pages):
            gray, _, boxes, texts = synthetic_page(rng, fonts, corpus)
            gray, boxes = _rotate(gray, boxes, float(rng.uniform(-args.max_skew, args.max_skew)))
            layout, cuts, _ = line_cuts(gray, "page", cfg, style, args.line_crop)
            total = total + match_lines([ln.polygon for ln in layout.lines], boxes)
            right_count += len(layout.lines) == len(boxes)
            ways = [
                predict(engine, engine.charset, [preprocess(c, engine.preprocess) for c in cut])
                for cut in cuts
            ]
            read = ways[more_confident(ways)]
            refs.append(" ".join(texts))
            hyps.append(" ".join(d.text for d in read if d.text))
        err = count_errors(refs, hyps)
        row = {
            "style": style,
            "pages": args.pages,
            "lines": total.reference,
            "precision": total.precision,
            "recall": total.recall,
            "f1": total.f1,
            "line_count_right": right_count / args.pages,
            "page_cer_end_to_end": err.cer,
        }
        results.append(row)
        print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    **run_facts(),
                    "segmenter": args.segmenter,
                    "line_detector": args.line_detector or "bundled",
                    "line_crop": args.line_crop,
                    "rows": results,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
