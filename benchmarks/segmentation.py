"""Benchmark: line segmentation and end-to-end page reading on PAGE-XML pages (Hooker test pages by default).

    python benchmarks/segmentation.py --split test --json runs/segmentation.json

For every page of the split:
- detection: htrlab's segmenter against the ground-truth line polygons, one-to-one matching at IoU >= 0.5
  (precision, recall, F1, mean IoU of the matches);
- end-to-end: the page read as a user would (`recognize --layout page`: segment, crop, recognise, reading order)
  against the page's transcription (its lines in reading order, joined by spaces), and the same model on the
  ground-truth line crops of the same page, joined the same way. The difference isolates what segmentation
  and reading order cost. CER is summed over pages (edit operations / reference characters).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from run_facts import run_facts

from htrlab.data.images import load_gray
from htrlab.data.preprocess import preprocess
from htrlab.data.readers.pagexml import read_page_file
from htrlab.read.engines import load_engine
from htrlab.read.predict import predict
from htrlab.segment.evaluate import DetectionScore, iou_matrix, match_lines
from htrlab.segment.lines import SegmentConfig
from htrlab.segment.read import cut_lines, lines_of, more_confident
from htrlab.text.metrics import count_errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-pages", type=int, default=0)
    ap.add_argument(
        "--line-crop",
        choices=["auto", "band", "outline"],
        default="auto",
        help="how lines are cut out, both the found ones and the ground-truth ones (see htrlab.data.linecrop); "
        "auto: the found lines both ways, the more confident reading of the page kept (as recognize does), "
        "the ground-truth lines as bands",
    )
    ap.add_argument("--segmenter", choices=["learned", "classical"], default="learned")
    ap.add_argument("--line-detector", help="line detector weights (default: the bundled ones)")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.data)
    rows = [ln.split("\t") for ln in (root / "splits.tsv").read_text().splitlines()[1:] if ln.strip()]
    pages = [p for p, s in rows if s == args.split]
    if args.max_pages:
        pages = pages[: args.max_pages]
    engine = load_engine(args.model, "auto", args.threads)
    seg_cfg = SegmentConfig(method=args.segmenter, detector=args.line_detector)
    total = DetectionScore(0, 0, 0, 0.0)
    refs, e2e_hyps, gt_hyps, ordered_hyps, per_page = [], [], [], [], []
    seg_s = 0.0
    for name in pages:
        xml = root / "pages" / f"{name}.xml"
        samples = read_page_file(xml)
        for s in samples:
            s.crop = "band" if args.line_crop == "auto" else args.line_crop
        gray = load_gray(samples[0].image_path) if samples else load_gray(xml.with_suffix(".jpg"))
        t0 = time.perf_counter()
        first = "band" if args.line_crop == "auto" else args.line_crop
        layout, crops, _ = lines_of(gray, "page", seg_cfg, source=str(xml), line_crop=first)
        seg_s += time.perf_counter() - t0
        cuts = [crops] + ([cut_lines(gray, layout, "outline", str(xml))] if args.line_crop == "auto" else [])
        polys = [s.polygon for s in samples if s.polygon is not None]
        score = match_lines([ln.polygon for ln in layout.lines], polys)
        total = total + score
        ref = " ".join(s.text for s in samples if s.text)
        ways = [
            predict(engine, engine.charset, [preprocess(c, engine.preprocess) for c in cut]) for cut in cuts
        ]
        hyp = ways[more_confident(ways)]
        gt_lines = [s for s in samples if s.text]
        gt_pred = predict(
            engine, engine.charset, [preprocess(s.load_image(), engine.preprocess) for s in gt_lines]
        )
        refs.append(ref)
        e2e_hyps.append(" ".join(d.text for d in hyp if d.text))
        # the same readings put in the ground truth's line order (each found line at the position of the
        # reference line it overlaps most; the rest after), to separate reading-order disagreements
        # (the transcribers' order is not always top to bottom) from segmentation errors
        iou = iou_matrix([ln.polygon for ln in layout.lines], polys) if layout.lines and polys else None
        keyed = []
        for k, d in enumerate(hyp):
            j = int(iou[k].argmax()) if iou is not None and iou[k].max() > 0 else len(polys)
            keyed.append((j, k, d.text))
        ordered_hyps.append(" ".join(t for _, _, t in sorted(keyed) if t))
        gt_hyps.append(" ".join(d.text for d in gt_pred))
        c_e, c_g = count_errors([ref], [e2e_hyps[-1]]), count_errors([ref], [gt_hyps[-1]])
        per_page.append(
            {
                "page": name,
                "predicted": score.predicted,
                "reference": score.reference,
                "matched": score.matched,
                "f1": score.f1,
                "page_cer": c_e.cer,
                "gt_crops_cer": c_g.cer,
                "page_cer_reference_order": count_errors([ref], [ordered_hyps[-1]]).cer,
            }
        )
        print(
            f"{name}: lines {score.predicted}/{score.reference} matched {score.matched}, page CER "
            f"{c_e.cer:.3f} (GT crops {c_g.cer:.3f})",
            file=sys.stderr,
        )
    e2e, gt = count_errors(refs, e2e_hyps), count_errors(refs, gt_hyps)
    ordered = count_errors(refs, ordered_hyps)
    summary = {
        "pages": len(pages),
        "precision": total.precision,
        "recall": total.recall,
        "f1": total.f1,
        "mean_iou_matched": total.mean_iou,
        "page_cer_end_to_end": e2e.cer,
        "page_wer_end_to_end": e2e.wer,
        "page_cer_end_to_end_in_reference_order": ordered.cer,
        "page_cer_gt_crops": gt.cer,
        "page_wer_gt_crops": gt.wer,
        "segmentation_s_per_page": seg_s / max(len(pages), 1),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    **run_facts(),
                    "split": args.split,
                    "line_crop": args.line_crop,
                    "segmenter": args.segmenter,
                    "line_detector": args.line_detector or "bundled",
                    **summary,
                    "per_page": per_page,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
