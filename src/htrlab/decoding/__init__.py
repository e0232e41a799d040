"""Turning per-frame character log-probabilities into text.

``Decoded`` and ``greedy_decode`` are imported on first use, so that reading the decoder settings
(:mod:`htrlab.decoding.config`) does not load PyTorch."""

from __future__ import annotations

from typing import Any

__all__ = ["Decoded", "greedy_decode"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from htrlab.decoding import greedy

        return getattr(greedy, name)
    raise AttributeError(f"module 'htrlab.decoding' has no attribute {name!r}")
