"""Train the learned line detector (``htrlab.segment.learned``) on PAGE-XML pages with baselines.

    python benchmarks/train_segmenter.py --data ../shared/data/hooker-letters --out runs/lines/htrlab-lines.safetensors

Training pages: the ``train`` pages of a dataset laid out as the Hooker letters are (``splits.tsv`` naming
``pages/NAME.xml``), or ``--train`` / ``--val`` PAGE-XML files or folders of them (each page's image where its
XML says). The weights kept are those of the lowest loss on crops of the validation pages. ``--resume`` continues a run from its state file.
``--synthetic N`` adds N rendered pages (``htrlab.synth.pages.synthetic_page``) in the handwriting and
printed fonts that benchmarks/make_synth_sets.py trains on (its held-out families stay out, for
benchmarks/segmentation_synthetic.py), so the detector is not tied to one collection's hand and layout.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from htrlab.train.segmenter import train_segmenter


def _xml_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(p.rglob("*.xml")) if p.is_dir() else [p]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--train", nargs="*", help="PAGE-XML files or folders (instead of --data's train split)")
    ap.add_argument("--val", nargs="*", help="PAGE-XML files or folders (instead of --data's val split)")
    ap.add_argument("--out", default="runs/lines/htrlab-lines.safetensors")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop", default="256x384", help="training crop, HEIGHTxWIDTH at the canonical scale")
    ap.add_argument("--width", type=int, default=12, help="channels of the first scale")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--synthetic", type=int, default=0, help="rendered pages added to the training pages")
    ap.add_argument("--corpus", default="../shared/data/text/brown.txt")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.train:
        train, val = _xml_files(args.train), _xml_files(args.val or [])
    else:
        root = Path(args.data)
        rows = [ln.split("\t") for ln in (root / "splits.tsv").read_text().splitlines()[1:] if ln.strip()]
        train = [root / "pages" / f"{p}.xml" for p, s in rows if s == "train"]
        val = [root / "pages" / f"{p}.xml" for p, s in rows if s == "val"]
    ch, cw = (int(v) for v in args.crop.lower().split("x"))
    fonts: list = []
    corpus: list[str] = []
    if args.synthetic:
        from make_synth_sets import (
            HELD_OUT_HAND,
            HELD_OUT_HAND_NPM,
            HELD_OUT_PRINTED,
            _printed_dir,
            _split_fonts,
        )

        from htrlab.synth.render import font_dirs, load_corpus

        fonts = _split_fonts(font_dirs()[-1], HELD_OUT_HAND + HELD_OUT_HAND_NPM)[0]
        fonts += _split_fonts(_printed_dir(), HELD_OUT_PRINTED)[0]
        corpus = load_corpus([args.corpus], max_lines=20000)
    t0 = time.perf_counter()
    out = train_segmenter(
        train,
        args.out,
        val,
        steps=args.steps,
        batch_size=args.batch_size,
        crop=(ch, cw),
        lr=args.lr,
        width=args.width,
        resume=args.resume,
        synthetic=args.synthetic,
        fonts=fonts,
        corpus=corpus,
        log=lambda m: print(f"[{time.perf_counter() - t0:7.0f} s] {m}", flush=True),
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
