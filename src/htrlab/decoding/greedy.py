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


def best_path_confidences(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[float]:
    """Per line, the geometric mean of the best class's probability over its valid frames (0 for no frames):
    the confidence every CTC decoder reports, so that it stays comparable between decoders."""
    best = log_probs.float().max(dim=-1).values
    return [float(best[i, :n].mean().exp()) if n > 0 else 0.0 for i, n in enumerate(map(int, lengths))]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, charset: Charset) -> list[Decoded]:
    """Best-path decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: (N, T, C) log-probabilities.
        lengths: (N,) valid frames per line.
        charset: maps class indices to characters (0 = blank).
    """
    idx = log_probs.argmax(dim=-1)  # (N, T)
    confs = best_path_confidences(log_probs, lengths)
    out: list[Decoded] = []
    for i, conf in enumerate(confs):
        path = idx[i, : int(lengths[i])].tolist()
        keep = [c for j, c in enumerate(path) if c != Charset.BLANK and (j == 0 or c != path[j - 1])]
        # references are whitespace-normalised (normalize_text), so hypotheses are too
        out.append(Decoded(normalize_text(charset.decode(keep)), conf))
    return out
