"""Learning-rate schedule: linear warm-up, then cosine decay (or constant) over the run's progress."""

from __future__ import annotations

import math


def lr_factor(step: int, warmup: int, progress: float, schedule: str, floor: float) -> float:
    """Multiplier of the base learning rate.

    Args:
        step: optimizer steps taken so far (0-based).
        warmup: linear warm-up steps.
        progress: fraction of the run done, in [0, 1] (by steps, or by time under a time budget).
        schedule: ``cosine`` or ``constant``.
        floor: the cosine's final value as a fraction of the base rate.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    p = min(1.0, max(0.0, progress))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
