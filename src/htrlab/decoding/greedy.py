"""Greedy (best-path) CTC decoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from htrlab.text.charset import Charset
from htrlab.text.normalize import normalize_text


@dataclass
class Decoded:
    """One decoded line: text and confidence in [0, 1] (geometric mean of the best path's frame probabilities)."""

    text: str
    confidence: float


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, charset: Charset) -> list[Decoded]:
    """Best-path decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: (N, T, C) log-probabilities.
        lengths: (N,) valid frames per line.
        charset: maps class indices to characters (0 = blank).
    """
    best, idx = log_probs.max(dim=-1)  # (N, T)
    out: list[Decoded] = []
    for i in range(log_probs.shape[0]):
        n = int(lengths[i])
        path = idx[i, :n].tolist()
        keep = [c for j, c in enumerate(path) if c != Charset.BLANK and (j == 0 or c != path[j - 1])]
        conf = float(best[i, :n].mean().exp()) if n > 0 else 0.0
        # references are whitespace-normalised (normalize_text), so hypotheses are too
        out.append(Decoded(normalize_text(charset.decode(keep)), conf))
    return out
