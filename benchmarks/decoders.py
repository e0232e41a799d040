"""Benchmark: greedy vs beam vs beam + character LM on the same network outputs, LM weights tuned on val only.

    python benchmarks/decoders.py --model default --lm runs/lm/char6-brown-hooker.arpa \
        --alphas 0.2,0.4,0.7,1.0 --betas 0,1,2 --json runs/decoders.json

The network runs once per split (its log-probabilities are kept); each decoder reads them. The LM weight alpha
and word score beta are chosen by val CER over the grid; test is decoded once per decoder with the chosen
values. lines/s counts decoding only (the network pass is shared and reported separately).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from run_facts import run_facts

from htrlab.bundled import default_checkpoint
from htrlab.data.dataset import open_dataset
from htrlab.data.prepared import default_cache_dir, prepare_lines
from htrlab.decoding.beam import BeamConfig, BeamDecoder
from htrlab.evaluate.engines import load_engine
from htrlab.evaluate.inference import emissions
from htrlab.lm.tune import score_decoder, tune_lm_weights


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--lm", required=True)
    ap.add_argument("--alphas", default="0.2,0.4,0.7,1.0")
    ap.add_argument("--betas", default="0,1,2")
    ap.add_argument("--beam-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-lines", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = default_checkpoint() if args.model == "default" else Path(args.model)
    engine = load_engine(path, "auto", args.threads)
    ds = open_dataset(args.data, on_error="skip")
    data = {}
    for split in ("val", "test"):
        samples = [s for s in ds.split(split) if s.text]
        if args.max_lines:
            samples = samples[: args.max_lines]
        lines = prepare_lines(samples, engine.preprocess, "skip", default_cache_dir(), progress=False)
        t0 = time.perf_counter()
        ems = emissions(engine, lines.images, 32)
        data[split] = (lines.texts, ems, time.perf_counter() - t0)
        print(f"{split}: {len(ems)} lines, network {len(ems) / data[split][2]:.1f} lines/s", file=sys.stderr)

    def score(split: str, dec: BeamDecoder | None) -> dict[str, float]:
        refs, ems, _ = data[split]
        cer, wer, lps = score_decoder(ems, refs, engine.charset, dec)
        return {"cer": cer, "wer": wer, "decode_lines_per_s": lps}

    rows = []
    beam = BeamDecoder(engine.charset, BeamConfig(beam_size=args.beam_size))
    for name, dec in (("greedy", None), ("beam", beam)):
        rows.append({"decoder": name, "val": score("val", dec), "test": score("test", dec)})
        print(rows[-1], file=sys.stderr)
    refs, ems, _ = data["val"]
    print("tuning alpha, beta on val ...", file=sys.stderr)
    best, grid = tune_lm_weights(
        ems,
        refs,
        engine.charset,
        args.lm,
        [float(a) for a in args.alphas.split(",")],
        [float(b) for b in args.betas.split(",")],
        args.beam_size,
    )
    dec = BeamDecoder(
        engine.charset,
        BeamConfig(beam_size=args.beam_size, lm_weight=best.alpha, word_score=best.beta),
        args.lm,
    )
    rows.append(
        {
            "decoder": f"beam+char LM (alpha {best.alpha}, beta {best.beta}, chosen on val)",
            "val": {"cer": best.cer, "wer": best.wer, "decode_lines_per_s": best.lines_per_s},
            "test": score("test", dec),
        }
    )
    print("| decoder | val CER % | test CER % | test WER % | decoding lines/s |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['decoder']} | {100 * r['val']['cer']:.2f} | {100 * r['test']['cer']:.2f} | "
            f"{100 * r['test']['wer']:.2f} | {r['test']['decode_lines_per_s']:.1f} |"
        )
    if args.json:
        meta = {
            **run_facts(),
            "model": str(path),
            "network_lines_per_s": {s: len(d[1]) / d[2] for s, d in data.items()},
        }
        Path(args.json).write_text(
            json.dumps({**meta, "rows": rows, "grid": [asdict(g) for g in grid]}, indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
