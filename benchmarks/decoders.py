"""Benchmark: greedy, beam, and beam search with character / word / neural LMs and LLM rescoring, on the same
network outputs; every weight tuned on val only, test decoded once per decoder with the chosen settings.

    python benchmarks/decoders.py --model default --char-lm runs/lm/char6-brown-hooker.arpa \
        --word-lm runs/lm/word3-brown-hooker.arpa --neural-lm runs/lm/charlstm-brown-hooker.safetensors \
        --rescore-lm smollm2 --json runs/decoders.json

The network runs once per split (its log-probabilities are kept); each decoder reads them. lines/s counts
decoding only (the network pass is shared and reported separately). Decoders whose LM is not given are left
out. The CMU US-English word 3-gram (inside pocketsphinx) is always measured as ``beam+word (CMU)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from run_facts import run_facts

from htrlab.data.dataset import open_dataset
from htrlab.decoding.config import DecoderConfig, make_decoder
from htrlab.decoding.rescore import (
    RESCORE_GRID,
    CausalLMScorer,
    RescoreConfig,
    RescoreDecoder,
    nbest_and_scores,
    rescore_in_order,
    tune_rescoring,
)
from htrlab.evaluate.tune import score_decoder, tune_grid
from htrlab.read.engines import load_engine
from htrlab.read.predict import split_emissions
from htrlab.text.metrics import count_errors


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--char-lm")
    ap.add_argument("--word-lm", help="a word ARPA built here (the CMU model is always included)")
    ap.add_argument("--neural-lm")
    ap.add_argument("--rescore-lm", help="smollm2 or a causal LM directory")
    ap.add_argument("--alphas", default="0.3,0.6,1.0", help="grid of every LM weight")
    ap.add_argument("--betas", default="0,1.5", help="grid of the word score")
    ap.add_argument("--beam-size", type=int, default=8)
    ap.add_argument("--token-beam", type=int, default=0, help="tokens tried per frame (0 = all)")
    ap.add_argument(
        "--neural-token-beam",
        type=int,
        default=12,
        help="tokens per frame for the neural LM row (it is slow)",
    )
    ap.add_argument("--tune-lines", type=int, default=0, help="tune on the first N val lines (0 = all val)")
    ap.add_argument(
        "--rows",
        default="greedy,beam,char,word-cmu,word,char+word,neural,rescore,rescore-context",
        help="which decoders to measure (their LMs must be given)",
    )
    ap.add_argument("--nbest", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-lines", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    engine = load_engine(args.model, "auto", args.threads)
    cs = engine.charset
    ds = open_dataset(args.data, on_error="skip")
    data, docs = {}, {}
    for split in ("val", "test"):
        texts, ems, seconds, docs[split] = split_emissions(engine, ds, split, args.max_lines)
        data[split] = (texts, ems, seconds)
        print(f"{split}: {len(ems)} lines, network {len(ems) / data[split][2]:.1f} lines/s", file=sys.stderr)

    def options(**kw: Any) -> DecoderConfig:
        base = {"beam_size": args.beam_size, "token_beam": args.token_beam, "nbest": args.nbest}
        return DecoderConfig(**{**base, **kw})

    def score(split: str, dec: Any) -> dict[str, float]:
        refs, ems, _ = data[split]
        cer, wer, lps = score_decoder(ems, refs, cs, dec)
        return {"cer": cer, "wer": wer, "decode_lines_per_s": lps}

    rows: list[dict[str, Any]] = []

    def save() -> None:
        if args.json:
            meta = {
                **run_facts(),
                "model": str(engine.path),
                "beam_size": args.beam_size,
                "token_beam": args.token_beam,
                "tune_lines": args.tune_lines or len(data["val"][0]),
                "network_lines_per_s": {s: len(d[1]) / d[2] for s, d in data.items()},
                "lines": {s: len(d[1]) for s, d in data.items()},
            }
            Path(args.json).write_text(json.dumps({**meta, "rows": rows}, indent=2), encoding="utf-8")

    def run(label: str, ns: DecoderConfig, grid: dict[str, list[float]]) -> DecoderConfig:
        refs, ems, _ = data["val"]
        if args.tune_lines:
            refs, ems = refs[: args.tune_lines], ems[: args.tune_lines]
        t0 = time.perf_counter()

        def build(settings: dict[str, float]) -> Any:
            for k, v in settings.items():
                setattr(ns, k, v)
            return make_decoder(ns, cs)

        if grid:
            best, pts = tune_grid(ems, refs, cs, build, grid)
            for k in grid:
                setattr(ns, k, best[k])
        else:
            pts = []
        dec = make_decoder(ns, cs)
        chosen = {k: getattr(ns, k) for k in grid}
        val = score("val", dec)
        test = score("test", dec)
        rows.append(
            {
                "decoder": label,
                "name": ns.decoder,
                "chosen_on_val": chosen,
                "val": val,
                "test": test,
                "grid": pts,
                "tuning_s": time.perf_counter() - t0,
            }
        )
        print(
            f"{label} {chosen}: val {val['cer']:.4f} test {test['cer']:.4f} ({test['decode_lines_per_s']:.1f}"
            " lines/s)",
            file=sys.stderr,
        )
        return ns

    a, b = _floats(args.alphas), _floats(args.betas)
    want = {r.strip() for r in args.rows.split(",") if r.strip()}
    if "greedy" in want:
        run("greedy", options(decoder="greedy"), {})
    if "beam" in want:
        run("beam", options(decoder="beam"), {})
    char_ns = None
    if args.char_lm and want & {"char", "char+word", "rescore", "rescore-context"}:
        char_ns = run(
            "beam + char 6-gram",
            options(decoder="beam+char", lm=args.char_lm),
            {"lm_weight": a, "word_score": b},
        )
    if "word-cmu" in want:
        run(
            "beam + word 3-gram (CMU)",
            options(decoder="beam+word", word_lm="cmu"),
            {"word_lm_weight": a, "word_score": b},
        )
    if args.word_lm and "word" in want:
        run(
            "beam + word 3-gram (Brown + Hooker train)",
            options(decoder="beam+word", word_lm=args.word_lm),
            {"word_lm_weight": a, "word_score": b},
        )
    if char_ns is not None and "char+word" in want:
        run(
            "beam + char 6-gram + word 3-gram (CMU)",
            options(
                decoder="beam+char+word",
                lm=args.char_lm,
                lm_weight=char_ns.lm_weight,
                word_lm="cmu",
                word_score=char_ns.word_score,
            ),
            {"word_lm_weight": [0.1, 0.3]},
        )
    if args.neural_lm and "neural" in want:
        run(
            "beam + neural char LM",
            options(decoder="beam+neural", neural_lm=args.neural_lm, token_beam=args.neural_token_beam),
            {"neural_lm_weight": a, "word_score": b},
        )
    scorer = (
        CausalLMScorer(args.rescore_lm) if args.rescore_lm and want & {"rescore", "rescore-context"} else None
    )
    if scorer is not None and "rescore" in want:
        t0 = time.perf_counter()
        base = char_ns or options(decoder="beam")
        beam = make_decoder(base, cs)
        rd = RescoreDecoder(beam, scorer, RescoreConfig(nbest=args.nbest))
        refs, ems, _ = data["val"]
        if args.tune_lines:
            refs, ems = refs[: args.tune_lines], ems[: args.tune_lines]
        lists, llm = nbest_and_scores(rd, ems)
        weights, bonuses = RESCORE_GRID["rescore_weight"], RESCORE_GRID["length_bonus"]
        (w, lb, _), pts = tune_rescoring(lists, llm, refs, weights, bonuses)
        rd.cfg = RescoreConfig(nbest=args.nbest, rescore_weight=w, length_bonus=lb)
        label = f"N-best ({args.nbest}) of {'beam + char 6-gram' if char_ns else 'beam'}, rescored by {args.rescore_lm}"
        rows.append(
            {
                "decoder": label,
                "name": "rescore+char" if char_ns else "rescore",
                "chosen_on_val": {"rescore_weight": w, "length_bonus": lb},
                "val": score("val", rd),
                "test": score("test", rd),
                "grid": [{"rescore_weight": p[0], "length_bonus": p[1], "cer": p[2]} for p in pts],
                "tuning_s": time.perf_counter() - t0,
            }
        )
        (_w0, lb0, _), _ = tune_rescoring(lists, llm, refs, [0.0], bonuses)
        rd0 = RescoreDecoder(
            beam, scorer, RescoreConfig(nbest=args.nbest, rescore_weight=0.0, length_bonus=lb0)
        )
        rows.append(
            {
                "decoder": label.replace(
                    f"rescored by {args.rescore_lm}", "length bonus only (LLM weight 0)"
                ),
                "name": "rescore (weight 0)",
                "chosen_on_val": {"rescore_weight": 0.0, "length_bonus": lb0},
                "val": score("val", rd0),
                "test": score("test", rd0),
                "grid": [],
                "tuning_s": 0.0,
            }
        )
        print(rows[-2]["decoder"], rows[-2]["chosen_on_val"], rows[-2]["test"], file=sys.stderr)
        save()
    if scorer is not None and "rescore-context" in want:
        # the same N-best lists, each line scored as the continuation of the previous line of its page
        t0 = time.perf_counter()
        base = char_ns or options(decoder="beam")
        rd = RescoreDecoder(make_decoder(base, cs), scorer, RescoreConfig(nbest=args.nbest))
        refs, ems, _ = data["val"]
        tune_docs = docs["val"]
        if args.tune_lines:
            refs, ems, tune_docs = (
                refs[: args.tune_lines],
                ems[: args.tune_lines],
                tune_docs[: args.tune_lines],
            )
        lists, llm = nbest_and_scores(rd, ems, tune_docs)
        weights, bonuses = RESCORE_GRID["rescore_weight"], RESCORE_GRID["length_bonus"]
        (w, lb, _), pts = tune_rescoring(lists, llm, refs, weights, bonuses)
        rd.cfg = RescoreConfig(nbest=args.nbest, rescore_weight=w, length_bonus=lb)

        def in_order(split: str) -> dict[str, float]:
            refs, ems, _ = data[split]
            t1 = time.perf_counter()
            hyps = [d.text for d in rescore_in_order(rd, ems, docs[split])]
            c = count_errors(list(refs), hyps)
            return {"cer": c.cer, "wer": c.wer, "decode_lines_per_s": len(refs) / (time.perf_counter() - t1)}

        rows.append(
            {
                "decoder": f"N-best ({args.nbest}) of {'beam + char 6-gram' if char_ns else 'beam'}, rescored by "
                f"{args.rescore_lm} given the previous line",
                "name": "rescore+context",
                "chosen_on_val": {"rescore_weight": w, "length_bonus": lb},
                "val": in_order("val"),
                "test": in_order("test"),
                "grid": [{"rescore_weight": p[0], "length_bonus": p[1], "cer": p[2]} for p in pts],
                "tuning_s": time.perf_counter() - t0,
            }
        )
        print(rows[-1]["decoder"], rows[-1]["chosen_on_val"], rows[-1]["test"], file=sys.stderr)
        save()

    greedy = next((r["test"]["cer"] for r in rows if r["name"] == "greedy"), float("nan"))
    print(
        "| decoder | chosen on val | val CER % | test CER % | test WER % | rel. CER change vs greedy "
        "| decoding lines/s |\n|---|---|---:|---:|---:|---:|---:|"
    )
    for r in rows:
        ch = ", ".join(f"{k} {v:g}" for k, v in r["chosen_on_val"].items()) or "-"
        print(
            f"| {r['decoder']} | {ch} | {100 * r['val']['cer']:.2f} | {100 * r['test']['cer']:.2f} | "
            f"{100 * r['test']['wer']:.2f} | {100 * (r['test']['cer'] - greedy) / greedy:+.1f} % | "
            f"{r['test']['decode_lines_per_s']:.1f} |"
        )
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
