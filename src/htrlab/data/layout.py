"""The geometry of a page's text lines, one vocabulary for every layer: a page format read in
(:mod:`htrlab.data.readers`), lines found on an image (:mod:`htrlab.segment`), lines read (:mod:`htrlab.read`)
and lines written out (PAGE-XML, ALTO). How a line becomes a line image is :mod:`htrlab.data.linecrop`'s."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TextLine:
    """A found line in page coordinates: outline polygon (K, 2), baseline (M, 2), box (x, y, w, h)."""

    polygon: np.ndarray
    baseline: np.ndarray
    box: tuple[int, int, int, int]
    id: str = ""
    text: str = ""
    confidence: float | None = None
    ink: int = 0  # ink pixels found for the line (at the analysis resolution)


@dataclass
class PageLayout:
    width: int
    height: int
    lines: list[TextLine] = field(default_factory=list)
    skew_degrees: float = 0.0
    char_height: float = 0.0
    # clockwise quarter turns the image needed to be read upright (htrlab.segment.orient)
    quarter_turns: int = 0
