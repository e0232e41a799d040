"""Choosing decoder settings (LM weights, word score, ...) by CER on validation lines."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from htrlab.decoding.beam import BeamDecoder
from htrlab.read.predict import decode_emissions
from htrlab.text.charset import Charset
from htrlab.text.metrics import count_errors


def score_decoder(
    ems: Sequence[torch.Tensor], refs: Sequence[str], charset: Charset, decoder: BeamDecoder | None
) -> tuple[float, float, float]:
    """CER, WER and decoding lines/s of ``decoder`` (None = greedy) on cached network outputs."""
    t0 = time.perf_counter()
    hyps = [d.text for d in decode_emissions(ems, charset, decoder)]
    secs = max(time.perf_counter() - t0, 1e-9)
    c = count_errors(list(refs), hyps)
    return c.cer, c.wer, len(refs) / secs


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
