"""Metrics and evaluation."""

from htrlab.text.metrics import ErrorCounts, cer, count_errors, wer

__all__ = ["ErrorCounts", "cer", "count_errors", "wer"]
