"""Choosing the LM weight (alpha) and word score (beta) of beam+LM decoding on validation lines."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from htrlab.decoding.beam import BeamConfig, BeamDecoder
from htrlab.evaluate.inference import decode_emissions
from htrlab.evaluate.metrics import count_errors
from htrlab.text.charset import Charset


@dataclass
class TunePoint:
    alpha: float
    beta: float
    cer: float
    wer: float
    lines_per_s: float


def score_decoder(
    ems: Sequence[torch.Tensor], refs: Sequence[str], charset: Charset, decoder: BeamDecoder | None
) -> tuple[float, float, float]:
    """CER, WER and decoding lines/s of ``decoder`` (None = greedy) on cached network outputs."""
    t0 = time.perf_counter()
    hyps = [d.text for d in decode_emissions(ems, charset, decoder)]
    secs = max(time.perf_counter() - t0, 1e-9)
    c = count_errors(list(refs), hyps)
    return c.cer, c.wer, len(refs) / secs


def tune_lm_weights(
    ems: Sequence[torch.Tensor],
    refs: Sequence[str],
    charset: Charset,
    lm: str | Path,
    alphas: Sequence[float],
    betas: Sequence[float],
    beam_size: int = 16,
) -> tuple[TunePoint, list[TunePoint]]:
    """Grid search of (alpha, beta) by CER on validation outputs; returns the best point and the grid."""
    grid = []
    for a, b in itertools.product(alphas, betas):
        dec = BeamDecoder(charset, BeamConfig(beam_size=beam_size, lm_weight=a, word_score=b), lm)
        grid.append(TunePoint(a, b, *score_decoder(ems, refs, charset, dec)))
    return min(grid, key=lambda p: (p.cer, p.wer)), grid


def tune_grid(
    ems: Sequence[torch.Tensor],
    refs: Sequence[str],
    charset: Charset,
    build: Callable[[dict[str, float]], Any],
    grid: Mapping[str, Sequence[float]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid search over any decoder settings: ``build(settings)`` makes the decoder for one point of the
    product of ``grid``'s value lists; points are ranked by CER (then WER) on these (validation) outputs.
    Returns the best point and every point, each a dict of the settings plus ``cer``, ``wer``, ``lines_per_s``."""
    keys = list(grid)
    rows = []
    for values in itertools.product(*(grid[k] for k in keys)):
        settings = dict(zip(keys, values))
        cer, wer, lps = score_decoder(ems, refs, charset, build(settings))
        rows.append({**settings, "cer": cer, "wer": wer, "lines_per_s": lps})
    return min(rows, key=lambda r: (r["cer"], r["wer"])), rows


def save_tuning(
    path: str | Path, lm: str | Path, best: TunePoint, grid: Sequence[TunePoint], **facts: object
) -> Path:
    """Write the chosen settings (and the grid) as JSON, to keep next to the model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"decoder": "beam+lm", "lm": str(lm), **asdict(best), **facts, "grid": [asdict(g) for g in grid]}
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path
