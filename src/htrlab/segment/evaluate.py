"""Line detection scores: predicted line polygons against ground-truth polygons, matched one to one at
IoU >= a threshold (Hungarian matching on IoU, scipy), giving precision, recall and F1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class DetectionScore:
    predicted: int
    reference: int
    matched: int
    mean_iou: float  # over the matched pairs

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, o: DetectionScore) -> DetectionScore:
        m = self.matched + o.matched
        iou = (self.mean_iou * self.matched + o.mean_iou * o.matched) / m if m else 0.0
        return DetectionScore(self.predicted + o.predicted, self.reference + o.reference, m, iou)


def _polygon(points: np.ndarray):  # type: ignore[no-untyped-def]
    from shapely.geometry import Polygon

    p = Polygon(np.asarray(points, dtype=float).reshape(-1, 2))
    return p if p.is_valid else p.buffer(0)


def iou_matrix(pred: Sequence[np.ndarray], ref: Sequence[np.ndarray]) -> np.ndarray:
    """IoU of every (predicted, reference) polygon pair (shapely; invalid outlines repaired by buffer(0))."""
    P = [_polygon(p) for p in pred]
    R = [_polygon(r) for r in ref]
    m = np.zeros((len(P), len(R)))
    for i, p in enumerate(P):
        for j, r in enumerate(R):
            if p.is_empty or r.is_empty or not p.intersects(r):
                continue
            inter = p.intersection(r).area
            union = p.area + r.area - inter
            m[i, j] = inter / union if union > 0 else 0.0
    return m


def match_lines(
    pred: Sequence[np.ndarray], ref: Sequence[np.ndarray], threshold: float = 0.5
) -> DetectionScore:
    """One-to-one matching maximising total IoU; pairs below ``threshold`` do not count."""
    from scipy.optimize import linear_sum_assignment

    if not pred or not ref:
        return DetectionScore(len(pred), len(ref), 0, 0.0)
    m = iou_matrix(pred, ref)
    rows, cols = linear_sum_assignment(-m)
    ious = [m[r, c] for r, c in zip(rows, cols) if m[r, c] >= threshold]
    return DetectionScore(len(pred), len(ref), len(ious), float(np.mean(ious)) if ious else 0.0)
