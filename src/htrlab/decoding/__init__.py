"""Turning per-frame character log-probabilities into text."""

from htrlab.decoding.greedy import Decoded, greedy_decode

__all__ = ["Decoded", "greedy_decode"]
