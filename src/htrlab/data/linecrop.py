"""Cutting text lines out of pages: the one module that turns a line's geometry into a line image.

- :func:`cut_line`: a page format's line in one of :data:`LINE_CROPS` (datasets, training, evaluation);
- :func:`cut_found_line`: a line the segmenter found, by its outline, upright and trimmed to its ink
  (``htrlab.segment.read`` cuts found lines with it or with :func:`crop_baseline_band`);
- the pieces: :func:`crop_baseline_band`, :func:`ink_box`, :func:`trim_to_ink`, :func:`crop_polygon`,
  :func:`crop_box`.

The band around the baseline:

Page formats give each line an outline polygon and a baseline. Transkribus-style outlines (the Hooker letters'
among them) are zig-zags that often run through the line's own ascenders and descenders, and some are only a
thin strip around the baseline: masking the page with them erases parts of the letters, which no recognizer
can read back. The baseline, by contrast, is reliable. :func:`crop_baseline_band` therefore cuts a band of fixed
height around the baseline, measured in the page's line spacing (``above`` of it over the baseline, ``below``
under it), and straightens the band by following the baseline column by column (sloping or curved lines come
out horizontal). Nothing is masked: neighbouring lines' descenders and ascenders reach into the band's edges,
which a recognizer learns to ignore, whereas erased strokes are lost.

Measured on Hooker val with the bundled model trained on polygon crops, without retraining: 28.9 % CER from
polygon crops, 23.3 % from baseline bands (above 0.8, below 0.4; 0.7/0.35 gave 24.1 %, 0.95/0.45 24.2 %,
1.1/0.5 28.2 %); see docs/RESULTS.md.

The band is cut by our own remap (OpenCV does the sampling) because the libraries that do this (kraken's
dewarping) come with their whole training stack and torchvision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from htrlab.data.images import background_level, ink_map
from htrlab.data.layout import TextLine
from htrlab.errors import ConfigError, DataError

# How a page line is cut out (``data.line_crop``, ``evaluate --line-crop``): "band" around the baseline
# (htrlab's own cut); "outline": the line's polygon masked to paper and cropped to its box (how Transkribus and
# eScriptorium export lines); "box": the outline's box unmasked, neighbours' strokes included; "ink": a tight
# box around the line's own ink. Training takes "mixed": every style, one drawn at random each time a line is.
LINE_CROPS = ("band", "outline", "box", "ink")
TRAIN_CROPS = (*LINE_CROPS, "mixed")
_OLD_NAMES = {"baseline": "band", "polygon": "outline"}  # the names before the four styles (saved configs)
BAND_ABOVE = 0.8  # band top: this fraction of the line spacing above the baseline
BAND_BELOW = 0.4  # band bottom: this fraction below it
BAND_MARGIN = 0.1  # added left and right of the line, as a fraction of the line spacing
MAX_BAND_HEIGHT = 1000  # pixels; a larger band means a broken spacing estimate


def crop_style(name: str, allowed: Sequence[str] = LINE_CROPS) -> str:
    """The canonical name of a line crop style (``baseline``/``polygon`` are the former names of
    ``band``/``outline``).

    Raises:
        ConfigError: a style not in ``allowed``.
    """
    style = _OLD_NAMES.get(name, name)
    if style not in allowed:
        raise ConfigError(f"unknown line crop {name!r}; choose from {', '.join(allowed)}")
    return style


def baseline_y(baseline: np.ndarray, xs: np.ndarray | float) -> np.ndarray:
    """Height of the polyline ``baseline`` (M, 2) [x, y] at ``xs``, extended straight beyond its ends along
    its first and last segments; a vertical or one-point baseline gives its mean height."""
    x = np.asarray(xs, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64).reshape(-1, 2)
    order = np.argsort(b[:, 0], kind="stable")
    bx, by = b[order, 0], b[order, 1]
    if len(bx) < 2 or bx[-1] == bx[0]:
        return np.full(x.shape, float(by.mean()))
    # collapse repeated x (vertical steps) so that interpolation and end slopes are defined
    ux, first = np.unique(bx, return_index=True)
    uy = np.array([by[bx == v].mean() for v in ux]) if len(ux) < len(bx) else by[first]
    y = np.interp(x, ux, uy)
    k0 = (uy[1] - uy[0]) / (ux[1] - ux[0])
    k1 = (uy[-1] - uy[-2]) / (ux[-1] - ux[-2])
    y = np.where(x < ux[0], uy[0] + k0 * (x - ux[0]), y)
    return np.where(x > ux[-1], uy[-1] + k1 * (x - ux[-1]), y)


def line_spacing(baselines: Sequence[np.ndarray | None], min_gap: float = 5.0) -> float | None:
    """The page's line spacing: the median, over lines, of the vertical distance from a line's baseline to the
    nearest baseline above it at the same column (its middle). ``None`` when no line has one above it."""
    lines = [np.asarray(b, dtype=np.float64).reshape(-1, 2) for b in baselines if b is not None and len(b)]
    gaps = []
    for i, b in enumerate(lines):
        mid = float(np.median(b[:, 0]))
        y = float(baseline_y(b, mid))
        above = [
            y - float(baseline_y(o, mid))
            for j, o in enumerate(lines)
            if j != i and o[:, 0].min() <= mid <= o[:, 0].max()
        ]
        above = [g for g in above if g > min_gap]
        if above:
            gaps.append(min(above))
    return float(np.median(gaps)) if gaps else None


def _along(baseline: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Points of the polyline ``baseline`` (in its own order: the reading direction) at arc lengths
    ``start, start + 1, ..., stop`` (pixels; below 0 and beyond its length it goes on straight along its end
    segments)."""
    seg = np.diff(baseline, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    arc = np.concatenate([[0.0], np.cumsum(lengths)])
    s = np.arange(np.floor(start), np.ceil(stop) + 1, dtype=np.float64)
    pts = np.stack([np.interp(s, arc, baseline[:, 0]), np.interp(s, arc, baseline[:, 1])], 1)
    t0, t1 = seg[0] / lengths[0], seg[-1] / lengths[-1]
    before, after = s < 0, s > arc[-1]
    pts[before] = baseline[0] + s[before, None] * t0
    pts[after] = baseline[-1] + (s[after, None] - arc[-1]) * t1
    return pts


def crop_baseline_band(
    page: np.ndarray,
    baseline: np.ndarray,
    spacing: float,
    polygon: np.ndarray | None = None,
    above: float = BAND_ABOVE,
    below: float = BAND_BELOW,
    margin: float = BAND_MARGIN,
    source: str = "",
) -> np.ndarray:
    """The band from ``above * spacing`` over the baseline to ``below * spacing`` under it, straightened: each
    column of the result is the baseline's normal at one point, taken every pixel along the baseline in its
    own direction (so sloping, curved and vertical lines, such as notes written up a margin, come out
    horizontal), from the line's first to its last point (baseline, or ``polygon`` where it reaches further)
    plus ``margin * spacing`` each side. A mostly level baseline whose points run right to left is taken left
    to right. Outside the page is paper.

    Raises:
        DataError: for a baseline with no points, a spacing that is not positive or gives a band taller than
            :data:`MAX_BAND_HEIGHT`, or a band entirely outside the page.
    """
    b = np.asarray(baseline, dtype=np.float64).reshape(-1, 2)
    if not len(b):
        raise DataError(f"{source}: baseline has no points")
    if not np.isfinite(spacing) or spacing <= 0 or (above + below) * spacing > MAX_BAND_HEIGHT:
        raise DataError(f"{source}: line spacing {spacing} gives no usable band around the baseline")
    keep = np.concatenate([[True], np.hypot(*np.diff(b, axis=0).T) > 1e-6])
    b = b[keep]
    poly = None if polygon is None or not len(polygon) else np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(b) < 2:  # a point: a level baseline through it, across the outline when there is one
        x0, x1 = (poly[:, 0].min(), poly[:, 0].max()) if poly is not None else (b[0, 0] - 1, b[0, 0] + 1)
        b = np.array([[x0, b[0, 1]], [max(x1, x0 + 1), b[0, 1]]])
    chord = b[-1] - b[0]
    if chord[0] < 0 and abs(chord[0]) >= abs(chord[1]):
        # a mostly level baseline drawn right to left: in English a reversed annotation, not upside-down text
        b = b[::-1]
    t0 = (b[1] - b[0]) / np.hypot(*(b[1] - b[0]))
    t1 = (b[-1] - b[-2]) / np.hypot(*(b[-1] - b[-2]))
    reach = 3.0 * spacing  # how far an outline may extend the line beyond its baseline's ends
    before = after = 0.0
    if poly is not None:
        before = float(np.clip(-((poly - b[0]) @ t0).min(), 0.0, reach))
        after = float(np.clip(((poly - b[-1]) @ t1).max(), 0.0, reach))
    lead = before + margin * spacing
    pts = _along(b, -lead, float(np.hypot(*np.diff(b, axis=0).T).sum()) + after + margin * spacing)
    # the direction of the line at each column, smoothed over half a line spacing so that the kinks of a
    # polyline do not shear the letters
    w = max(1, round(spacing / 2))
    ahead = pts[np.minimum(np.arange(len(pts)) + w, len(pts) - 1)]
    behind = pts[np.maximum(np.arange(len(pts)) - w, 0)]
    tangent = ahead - behind
    tangent /= np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-9)[:, None]
    down = np.stack([-tangent[:, 1], tangent[:, 0]], 1)  # (1, 0) -> (0, 1): image rows grow downwards
    rows = np.arange(-round(above * spacing), round(below * spacing) + 1, dtype=np.float64)
    map_x = (pts[None, :, 0] + rows[:, None] * down[None, :, 0]).astype(np.float32)
    map_y = (pts[None, :, 1] + rows[:, None] * down[None, :, 1]).astype(np.float32)
    h, w_page = page.shape[:2]
    inside = (map_x >= 0) & (map_x <= w_page - 1) & (map_y >= 0) & (map_y <= h - 1)
    if not inside.any():
        raise DataError(
            f"{source}: the band around baseline {b.min(0).round().tolist()}-{b.max(0).round().tolist()} lies "
            f"outside the {w_page}x{h} page"
        )
    r0, r1 = int(map_y[inside].min()), int(map_y[inside].max()) + 1
    c0, c1 = int(map_x[inside].min()), int(map_x[inside].max()) + 1
    paper = background_level(page[r0:r1, c0:c1])
    return cv2.remap(
        page, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=int(paper)
    )


def _outline_box(poly: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = np.clip(poly.min(0), 0, [w, h]).astype(int)
    x1, y1 = np.clip(poly.max(0) + 1, 0, [w, h]).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def ink_box(
    page: np.ndarray, polygon: np.ndarray, reach: float, source: str = ""
) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) around the line's own ink: the dark connected components lying mostly inside
    the outline ``polygon``, searched ``reach`` pixels above and below it, so ascenders and descenders an
    outline cuts through are kept whole and strokes of the neighbouring lines are left out. The outline's box
    when no ink is found."""
    ph, pw = page.shape[:2]
    poly = np.asarray(polygon, dtype=np.int64).reshape(-1, 2)
    x0, y0, x1, y1 = _outline_box(poly, pw, ph)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise DataError(f"{source}: line outline {poly.min(0).tolist()}-{poly.max(0).tolist()} is empty")
    r = round(reach)
    top, bottom = max(0, y0 - r), min(ph, y1 + r)
    region = np.ascontiguousarray(page[top:bottom, x0:x1])
    _, dark = cv2.threshold(region, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    inside = np.zeros(region.shape, np.uint8)
    if len(poly) >= 3:
        cv2.fillPoly(inside, [(poly - [x0, top]).astype(np.int32)], 1)
    else:
        inside[y0 - top : y1 - top] = 1
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if n <= 1:
        return x0, y0, x1, y1
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    within = np.bincount(labels.ravel(), weights=inside.ravel().astype(np.float64), minlength=n)
    # Otsu on a faint line picks paper texture too: specks under a thousandth of the region are not ink
    keep = (within / np.maximum(area, 1) >= 0.5) & (area >= max(3.0, 1e-3 * inside.sum() / 10))
    keep[0] = False
    if not keep.any():
        return x0, y0, x1, y1
    s = stats[keep]
    bx0 = int(s[:, cv2.CC_STAT_LEFT].min())
    by0 = int(s[:, cv2.CC_STAT_TOP].min())
    bx1 = int((s[:, cv2.CC_STAT_LEFT] + s[:, cv2.CC_STAT_WIDTH]).max())
    by1 = int((s[:, cv2.CC_STAT_TOP] + s[:, cv2.CC_STAT_HEIGHT]).max())
    # a stroke joined to a neighbouring line's descender or ascender must not carry the box into that line
    slack = 0.35 * reach / 0.6
    return x0 + bx0, max(top + by0, round(y0 - slack)), x0 + bx1, min(top + by1, round(y1 + slack))


def _paper_tone(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper a user's scan or photo gives: dimmer or brighter, lit unevenly (a linear gradient across
    the line), lower contrast."""
    g = gray.astype(np.float32)
    h, w = g.shape
    level = rng.uniform(0.75, 1.05)
    contrast = rng.uniform(0.6, 1.0)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xs / max(w, 1) + np.sin(angle) * ys / max(h, 1)).astype(np.float32)
    light = level * (1.0 + rng.uniform(-0.25, 0.25) * ramp)
    paper = float(np.percentile(g, 90))
    out = (paper - contrast * (paper - g)) * light
    return np.clip(out, 0, 255).astype(np.uint8)


def cut_line(
    page: np.ndarray,
    style: str,
    *,
    polygon: np.ndarray | None = None,
    baseline: np.ndarray | None = None,
    box: tuple[int, int, int, int] | None = None,
    spacing: float | None = None,
    rng: np.random.Generator | None = None,
    source: str = "",
) -> np.ndarray:
    """One page line cut out in ``style`` (one of :data:`LINE_CROPS`): the one place that decides how a line
    becomes a line image. With ``rng`` the cut varies as users' crops do (training): the band's height and
    margins, extra paper or page around the other styles, outline masks filled with the paper's tone or with
    white, the paper's tone and lighting. A line without the geometry a style needs falls back: a band needs a
    baseline and the page's line spacing (else the outline), the other styles an outline (else the box).

    Raises:
        DataError: a line with no usable geometry or entirely outside the page.
    """
    h, w = page.shape[:2]
    poly = None if polygon is None or len(polygon) < 2 else np.asarray(polygon, np.int64).reshape(-1, 2)
    if style == "band" and baseline is not None and spacing:
        if rng is None:
            return crop_baseline_band(page, baseline, spacing, poly, source=source)
        cut = crop_baseline_band(
            page,
            baseline,
            spacing,
            poly,
            above=BAND_ABOVE * rng.uniform(0.8, 1.25),
            below=BAND_BELOW * rng.uniform(0.75, 1.35),
            margin=rng.uniform(0.0, 0.5),
            source=source,
        )
        return _paper_tone(cut, rng) if rng.random() < 0.5 else cut
    if poly is None:
        if box is None:  # a line image of its own
            return np.array(page)
        x, y, bw, bh = box
        poly = np.array([[x, y], [x + bw - 1, y + bh - 1]])
    x0, y0, x1, y1 = _outline_box(poly, w, h)
    tall = float(spacing) if spacing else float(max(y1 - y0, 8))  # the line's height, for margins
    if style in ("band", "outline"):
        if len(poly) < 3:
            return crop_box(page, x0, y0, x1 - x0, y1 - y0, source)
        cut = crop_polygon(page, poly, source)
        if rng is None:
            return cut
        if rng.random() < 0.5:  # exports fill outside the outline with white, or with transparency read as it
            inside = np.zeros(cut.shape, np.uint8)
            cv2.fillPoly(inside, [(poly - [x0, y0]).astype(np.int32)], 1)
            cut[inside == 0] = 255
            fill = 255
        else:
            fill = background_level(cut)
        t, b, left, right = (int(rng.uniform(0, f * tall)) for f in (0.2, 0.2, 0.5, 0.5))
        cut = cv2.copyMakeBorder(cut, t, b, left, right, cv2.BORDER_CONSTANT, value=int(fill))
        return _paper_tone(cut, rng) if rng.random() < 0.5 else cut
    if style == "ink":
        x0, y0, x1, y1 = ink_box(page, poly, 0.6 * tall, source)
        reach = (0.15, 0.15, 0.4, 0.4)
    elif style == "box":
        reach = (0.15, 0.15, 0.4, 0.4)
    else:
        raise ConfigError(f"unknown line crop {style!r}; choose from {', '.join(LINE_CROPS)}")
    if rng is None:  # the ink box gets the few pixels of paper a careful hand crop leaves
        t = b = left = right = round(0.05 * tall) if style == "ink" else 0
    else:
        t, b, left, right = (int(rng.uniform(0, f * tall)) for f in reach)
    cut = crop_box(page, x0 - left, y0 - t, x1 - x0 + left + right, y1 - y0 + t + b, source)
    return _paper_tone(cut, rng) if rng is not None and rng.random() < 0.5 else cut


def cut_found_line(page: np.ndarray, line: TextLine, margin: float = 4.0) -> np.ndarray:
    """A line found on an image (``htrlab.segment``) cut by its outline: its pixels, rotated so that its
    baseline is horizontal, outside its polygon set to paper, trimmed to its ink (:func:`trim_to_ink`)."""
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
    return trim_to_ink(crop, paper)


def trim_to_ink(
    gray: np.ndarray, paper: int | None = None, pad: int = 4, ink: np.ndarray | None = None
) -> np.ndarray:
    """Cut the paper margins around the ink (keeping ``pad`` pixels): a line in a wide margin would be shrunk
    by the height normalisation. ``ink``: the image's binary ink map when the caller has it.

    A line given on its own is read trimmed like this, not cut as a baseline band as page lines are: for the
    bundled model (trained on bands and on tightly cut synthetic lines) a band re-cut around a lone line's
    fitted baseline read worse on every set tried (Hooker val band crops 19.5 -> 30.0 % CER, held-out
    handwriting fonts 27.8 -> 34.0 %, printed 0.23 -> 1.33 %; docs/RESULTS.md)."""
    if gray.size == 0:
        return gray
    if ink is None and min(gray.shape) >= 8:
        ink = ink_map(gray)
    elif ink is None:
        ink = gray < (background_level(gray) if paper is None else paper) - 40
    ys, xs = np.nonzero(ink)
    if not len(xs):
        return gray
    return gray[max(ys.min() - pad, 0) : ys.max() + pad + 1, max(xs.min() - pad, 0) : xs.max() + pad + 1]


def crop_polygon(page: np.ndarray, polygon: np.ndarray, source: str = "") -> np.ndarray:
    """Crop the bounding box of ``polygon`` (K, 2) [x, y] from ``page``; pixels outside it become paper.

    Setting the outside to the page background keeps ascenders/descenders of neighbouring lines out of the crop.

    Raises:
        DataError: if the polygon is degenerate or lies outside the page.
    """
    h, w = page.shape[:2]
    pts = np.asarray(polygon, dtype=np.int64).reshape(-1, 2)
    if len(pts) < 2:
        raise DataError(f"{source}: polygon has fewer than 2 points")
    x0, y0 = np.clip(pts.min(0), 0, [w, h])
    x1, y1 = np.clip(pts.max(0) + 1, 0, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise DataError(
            f"{source}: line polygon {pts.min(0).tolist()}-{pts.max(0).tolist()} is empty or outside the "
            f"{w}x{h} page"
        )
    crop = np.array(page[y0:y1, x0:x1])
    if len(pts) < 3:
        return crop
    mask = np.zeros(crop.shape, dtype=np.uint8)
    cv2.fillPoly(mask, [(pts - [x0, y0]).astype(np.int32)], 1)
    inside = mask.astype(bool)
    if inside.sum() < 4:
        return crop
    crop[~inside] = background_level(crop, inside)
    return crop


def crop_box(page: np.ndarray, x: int, y: int, w: int, h: int, source: str = "") -> np.ndarray:
    """Crop an axis-aligned box; raises :class:`DataError` if it is empty after clipping to the page."""
    ph, pw = page.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(pw, x + w), min(ph, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise DataError(f"{source}: box x={x} y={y} w={w} h={h} is empty or outside the {pw}x{ph} page")
    return np.array(page[y0:y1, x0:x1])
