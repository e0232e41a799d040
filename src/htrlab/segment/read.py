"""From any image to line images: decide whether it is a word, a line or a page (``layout="auto"``), find the
lines when it holds several, and cut each line out upright (rotated by its baseline's angle, the pixels
outside its polygon set to paper) for the recognizer."""

from __future__ import annotations

import math

import cv2
import numpy as np

from htrlab.data.images import background_level
from htrlab.errors import ConfigError
from htrlab.segment.lines import PageLayout, SegmentConfig, TextLine, ink_map, segment_lines

LAYOUTS = ("auto", "word", "line", "page")


def whole_image_line(gray: np.ndarray) -> TextLine:
    h, w = gray.shape
    poly = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    return TextLine(poly, np.array([[0, h - 1], [w - 1, h - 1]]), (0, 0, w, h), "l1")


def crop_line(page: np.ndarray, line: TextLine, margin: float = 4.0) -> np.ndarray:
    """The line's pixels, rotated so that its baseline is horizontal, outside its polygon set to paper."""
    poly = np.asarray(line.polygon, dtype=np.float64)
    x0, y0 = np.floor(poly.min(0) - margin).astype(int)
    x1, y1 = np.ceil(poly.max(0) + margin).astype(int)
    H, W = page.shape
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    crop = np.array(page[y0:y1, x0:x1])
    if crop.size == 0:
        return crop
    mask = np.zeros(crop.shape, np.uint8)
    if len(poly) >= 3:
        cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 1)
    else:
        mask[:] = 1
    paper = background_level(crop, mask.astype(bool)) if mask.any() else 255
    crop[mask == 0] = paper
    b = np.asarray(line.baseline, dtype=np.float64)
    if len(b) >= 2 and b[-1, 0] != b[0, 0]:
        angle = math.degrees(math.atan2(b[-1, 1] - b[0, 1], b[-1, 0] - b[0, 0]))
        if abs(angle) > 0.3:
            h, w = crop.shape
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            cos, sin = abs(m[0, 0]), abs(m[0, 1])
            nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
            m[0, 2] += nw / 2 - w / 2
            m[1, 2] += nh / 2 - h / 2
            crop = cv2.warpAffine(crop, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=int(paper))
    # trim paper rows/columns left around the ink by the rotation and the margin
    _, ink = ink_map(crop) if min(crop.shape) >= 8 else (None, crop < paper - 40)
    ys, xs = np.nonzero(ink)
    if len(xs):
        pad = 4
        crop = crop[max(ys.min() - pad, 0) : ys.max() + pad + 1, max(xs.min() - pad, 0) : xs.max() + pad + 1]
    return crop


def lines_of(
    gray: np.ndarray, layout: str = "auto", cfg: SegmentConfig | None = None, source: str = "image"
) -> tuple[PageLayout, list[np.ndarray], str]:
    """(layout with its lines, a crop per line, the layout used: ``line`` or ``page``).

    ``word`` and ``line`` read the whole image as one line; ``page`` finds the lines; ``auto`` finds them and
    reads the whole image as one line when fewer than two of them hold at least 30 % of the ink of the
    largest (remnants of neighbouring lines in a line crop are not lines), or when the image is less than 1.8
    times as tall as its lines.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    h, w = gray.shape
    if layout in ("word", "line"):
        return PageLayout(w, h, [whole_image_line(gray)]), [gray], "line"
    found = segment_lines(gray, cfg, source)
    most = max((ln.ink for ln in found.lines), default=0)
    substantial = [ln for ln in found.lines if ln.ink >= 0.3 * most]
    line_h = float(np.median([ln.box[3] for ln in substantial])) if substantial else float(h)
    if layout == "auto" and (len(substantial) < 2 or h < 1.8 * line_h):
        line = whole_image_line(gray)
        found.lines = [line]
        return found, [gray], "line"
    return found, [crop_line(gray, ln) for ln in found.lines], "page"
