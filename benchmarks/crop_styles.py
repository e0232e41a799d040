"""Benchmark: one checkpoint's CER on the same held-out page lines cut in every crop style, greedy and with the
default decoder, with reading speed; optionally choosing the default decoder's LM weight and word score.

    python benchmarks/crop_styles.py --model default --json runs/crop-styles.json
    python benchmarks/crop_styles.py --model default --lm runs/lm/char6.arpa.gz --tune --json runs/tune.json

For each style of ``htrlab.data.linecrop.LINE_CROPS`` (band, outline, box, ink) and each split, the lines are
cut and preprocessed (cached), the network runs once (its log-probabilities kept, batched as ``evaluate`` does),
then greedy decoding and the LM decoder read the same outputs. With ``--tune`` the LM weight and word score are
chosen on the val lines of every style together (never test), and written to ``--decoding-out``.

Speed: lines/s of the network pass and of each decoder, and end to end (network + decoder) for a
batched reading, on this machine with ``--threads``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from run_facts import run_facts

from htrlab.bundled import default_decoding
from htrlab.data.dataset import open_dataset
from htrlab.data.linecrop import LINE_CROPS
from htrlab.decoding.beam import BeamConfig, BeamDecoder
from htrlab.evaluate.tune import score_decoder, tune_grid
from htrlab.read.engines import load_engine
from htrlab.read.predict import split_emissions


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def _arpa_order(path: str) -> int:
    """The highest order listed in an ARPA file's (possibly gzipped) header."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as fh:
        order = 0
        for line in fh:
            if line.startswith("ngram "):
                order = int(line.split()[1].split("=")[0])
            elif order and not line.strip():
                return order
    return order


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--splits", default="val,test")
    ap.add_argument("--styles", default=",".join(LINE_CROPS))
    ap.add_argument("--lm", help="character LM (default: the bundled one, at its bundled settings)")
    ap.add_argument("--lm-weight", type=float, help="default: the bundled setting")
    ap.add_argument("--word-score", type=float, help="default: the bundled setting")
    ap.add_argument("--beam-size", type=int, help="default: the bundled setting")
    ap.add_argument("--tune", action="store_true", help="choose LM weight and word score on val (all styles)")
    ap.add_argument("--alphas", default="0.3,0.5,0.7,0.9,1.1")
    ap.add_argument("--betas", default="0,0.5,1,1.5")
    ap.add_argument("--decoding-out", help="with --tune: write the chosen settings as a decoding JSON here")
    ap.add_argument(
        "--lm-build",
        help="with --decoding-out: the `htrlab lm build` command that made --lm (for the model card)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-lines", type=int, default=0, help="lines per split and style (0 = all)")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    engine = load_engine(args.model, "auto", args.threads)
    cs = engine.charset
    bundled = default_decoding() or {}
    lm = args.lm or bundled.get("lm")
    settings = {
        "lm_weight": args.lm_weight if args.lm_weight is not None else bundled.get("lm_weight", 0.5),
        "word_score": args.word_score if args.word_score is not None else bundled.get("word_score", 0.0),
        "beam_size": args.beam_size or bundled.get("beam_size", 8),
    }
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    data: dict[tuple[str, str], tuple[list[str], list[torch.Tensor], float]] = {}
    for style in styles:
        ds = open_dataset(args.data, on_error="skip", line_crop=style)
        for split in splits:
            texts, ems, seconds, _ = split_emissions(engine, ds, split, args.max_lines)
            data[style, split] = (texts, ems, seconds)
            print(
                f"{style} {split}: {len(ems)} lines, network {len(ems) / data[style, split][2]:.1f} lines/s",
                file=sys.stderr,
            )

    def decoder(s: dict[str, Any]) -> BeamDecoder | None:
        if not lm:
            return None
        cfg = BeamConfig(beam_size=int(s["beam_size"]), lm_weight=s["lm_weight"], word_score=s["word_score"])
        return BeamDecoder(cs, cfg, lm)

    tuning: dict[str, Any] = {}
    if args.tune:
        if not lm:
            ap.error("--tune needs an LM (--lm, or a bundled one)")
        refs, ems = [], []
        for style in styles:
            if (style, "val") in data:
                refs += data[style, "val"][0]
                ems += data[style, "val"][1]
        t0 = time.perf_counter()
        best, grid = tune_grid(
            ems,
            refs,
            cs,
            lambda p: decoder({**settings, **p}),
            {"lm_weight": _floats(args.alphas), "word_score": _floats(args.betas)},
        )
        settings.update({k: best[k] for k in ("lm_weight", "word_score")})
        tuning = {"chosen": settings, "grid": grid, "lines": len(refs), "seconds": time.perf_counter() - t0}
        print(f"tuned on {len(refs)} val lines: {settings}", file=sys.stderr)
        if args.decoding_out:
            doc = {
                "settings": {"decoder": "beam+lm", "lm": Path(lm).name, **settings},
                "tuned_on": f"{args.data} val, line crops {', '.join(styles)} ({len(refs)} lines)",
                "model": str(engine.path),
                "lm_order": _arpa_order(lm),
                "lm_build": args.lm_build or "",
            }
            Path(args.decoding_out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    dec = decoder(settings)
    rows = []
    for (style, split), (refs, ems, net_s) in data.items():
        g_cer, g_wer, g_lps = score_decoder(ems, refs, cs, None)
        row: dict[str, Any] = {
            "style": style,
            "split": split,
            "lines": len(refs),
            "network_lines_per_s": len(refs) / net_s,
            "greedy": {"cer": g_cer, "wer": g_wer, "decode_lines_per_s": g_lps},
        }
        if dec is not None:
            cer, wer, lps = score_decoder(ems, refs, cs, dec)
            row["lm"] = {
                "cer": cer,
                "wer": wer,
                "decode_lines_per_s": lps,
                "end_to_end_lines_per_s": len(refs) / (net_s + len(refs) / lps),
            }
        rows.append(row)
    print(
        "| line crop | split | lines | greedy CER % | default (beam + LM) CER % | rel. change | lines/s greedy / default |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        g = r["greedy"]["cer"] * 100
        greedy_lps = r["lines"] / (
            r["lines"] / r["network_lines_per_s"] + r["lines"] / r["greedy"]["decode_lines_per_s"]
        )
        if "lm" in r:
            m = r["lm"]["cer"] * 100
            print(
                f"| {r['style']} | {r['split']} | {r['lines']} | {g:.2f} | {m:.2f} | {(m - g) / g * 100:+.1f} % | "
                f"{greedy_lps:.1f} / {r['lm']['end_to_end_lines_per_s']:.1f} |"
            )
        else:
            print(f"| {r['style']} | {r['split']} | {r['lines']} | {g:.2f} | - | - | {greedy_lps:.1f} / - |")
    if args.json:
        doc = {
            **run_facts(),
            "model": str(engine.path),
            "lm": str(lm) if lm else None,
            "settings": settings,
            "tuning": tuning,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
