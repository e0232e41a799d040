"""From any image to line images: decide whether it is a word, a line or a page (``layout="auto"``), find the
lines when it holds several, and cut each line out upright for the recognizer: a band around its baseline,
straightened (as training lines of PAGE-XML pages are cut), or its outline rotated by its baseline's angle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from htrlab.data.images import ink_map
from htrlab.data.layout import PageLayout, TextLine
from htrlab.data.linecrop import crop_baseline_band, crop_style, cut_found_line, line_spacing, trim_to_ink
from htrlab.errors import ConfigError
from htrlab.segment.lines import SegmentConfig, area_weighted_median, segment_lines

LAYOUTS = ("auto", "word", "line", "page")
PAGE_CUTS = ("band", "outline")  # how lines a segmenter found are cut (an outline is trimmed to its ink)
MAX_SPACING_IN_CHARS = 3.5
# ink share under which an image with no line found is blank: scanner specks on an empty page cover about
# 0.1 %; of 300 Hooker val line crops, the 5th percentile covers 4.7 %, and the segmenter finds no line in 6,
# of which the 3 under 0.5 % are crops labelled with no text (a stray mark)
BLANK_INK = 0.005
# Found lines whose baselines lie within this many character heights of each other are one row of text (a line
# the segmenter split into pieces side by side); an image with fewer than two rows is one line under auto. On
# Hooker val, 47 of 701 line crops were read as pages before; 24 of them have one row by this test, while
# 297 of 298 paragraphs of 2-3 lines cut from the val pages that were read as pages keep two rows or more
# (the same result for 1.0 to 2.0; docs/RESULTS.md, "Line images read as pages").
ROW_GAP = 2.0
# An image of at most SMALL_PAGE_ROWS rows is read as a page only when its lines are read with a mean confidence
# at least PAGE_MARGIN above that of the whole image read as one line (``settle_small_page``).
SMALL_PAGE_ROWS = 3
PAGE_MARGIN = 0.10


def whole_image_line(gray: np.ndarray) -> TextLine:
    h, w = gray.shape
    poly = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    return TextLine(poly, np.array([[0, h - 1], [w - 1, h - 1]]), (0, 0, w, h), "l1")


def _ink_height_in_chars(binary: np.ndarray) -> float:
    """How many character heights the ink (a binary map) spans vertically; the character height here is the
    area-weighted median height of the ink's components, which broken strokes and specks do not pull down."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    H, W = binary.shape
    st = stats[1:]
    if min(H, W) >= 400:
        # on page-sized images, components over half the image's height or width are rules, frames or a dark
        # ground's edges, not characters: their weight made a whole letter scanned on a dark ground (Hooker
        # JDH_2_16_91_001) look one line tall. (A word alone in a small crop can span half of it.)
        st = st[(st[:, 3] <= 0.5 * H) & (st[:, 2] <= 0.5 * W)]
    if not len(st):
        return 0.0
    char_h = area_weighted_median(st[:, 3].astype(float), st[:, 4].astype(float))
    rows = np.nonzero(binary.any(1))[0]
    return float(rows.max() - rows.min() + 1) / max(char_h, 1.0)


def lines_of(
    gray: np.ndarray,
    layout: str = "auto",
    cfg: SegmentConfig | None = None,
    source: str = "image",
    line_crop: str = "band",
) -> tuple[PageLayout, list[np.ndarray], str]:
    """(layout with its lines, a crop per line, the layout used: ``line``, ``page`` or ``blank``).

    ``word`` and ``line`` read the whole image as one line; ``page`` finds the lines; ``auto`` finds them and
    reads the whole image as one line when fewer than two of them hold at least 30 % of the ink of the
    largest (remnants of neighbouring lines in a line crop are not lines) or those lie in fewer than two rows
    (``text_rows``: pieces of one line side by side), or when its ink spans less than 3.5 character heights (a
    word or one line); a page of few rows is then settled by the recogniser (``settle_small_page``, with a
    reader, as ``recognize`` has).
    An image in which the segmenter finds no line and whose ink covers less than ``BLANK_INK`` of it is
    ``blank``: no lines (under ``auto`` and ``page``; ``word`` and ``line`` always read the image).
    Page lines are cut as bands around their baselines (``line_crop="band"``, as PAGE-XML training lines
    are) or by their outlines (``"outline"``, rotated upright); a page whose spacing cannot be measured (one
    line) uses the outlines.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    line_crop = crop_style(line_crop, PAGE_CUTS)
    h, w = gray.shape
    ink = ink_map(gray) if min(gray.shape) >= 8 else None
    if layout in ("word", "line"):
        return PageLayout(w, h, [whole_image_line(gray)]), [trim_to_ink(gray, ink=ink)], "line"
    found = segment_lines(gray, cfg, source)
    if not found.lines and (ink is None or float(ink.mean()) < BLANK_INK):
        # a blank page (the back of a sheet, an empty form) or specks of scanner noise: nothing to read, where a
        # model made to read the whole image as a line would make up a letter or two
        return found, [], "blank"
    substantial = substantial_lines(found)
    # (a test that the image be 1.8 times as tall as its lines' median box was dropped for the row test and
    # settle_small_page: it read 27 of 348 Hooker val paragraphs of 2-3 lines as one line, the boxes of a hand
    # with long ascenders and descenders overlapping; docs/RESULTS.md, "Line images read as pages")
    if layout == "auto" and (
        text_rows(substantial, found.char_height) < 2 or ink is None or _ink_height_in_chars(ink) < 3.5
    ):
        found.lines = [whole_image_line(gray)]
        return found, [trim_to_ink(gray, ink=ink)], "line"
    return found, cut_lines(gray, found, line_crop, source), "page"


def text_rows(lines: Sequence[TextLine], char_height: float) -> int:
    """How many rows of text ``lines`` make: their baselines sorted by height, a new row where two are more
    than ``ROW_GAP`` character heights apart."""
    if not lines:
        return 0
    ys = np.sort([float(np.mean(ln.baseline[:, 1])) for ln in lines])
    return 1 + int(np.sum(np.diff(ys) > ROW_GAP * max(char_height, 1.0)))


def substantial_lines(found: PageLayout) -> list[TextLine]:
    """The found lines holding at least 30 % of the ink of the largest (not remnants of neighbouring lines)."""
    most = max((ln.ink for ln in found.lines), default=0)
    return [ln for ln in found.lines if ln.ink >= 0.3 * most]


def settle_small_page(
    gray: np.ndarray,
    found: PageLayout,
    cuts: list[list[np.ndarray]],
    read: Callable[[list[np.ndarray]], Sequence[Any]],
    known: dict[int, list[Any]] | None = None,
) -> tuple[PageLayout, list[list[np.ndarray]], str, dict[int, list[Any]]]:
    """Under ``--layout auto``, a page of at most ``SMALL_PAGE_ROWS`` rows found in ``gray`` is read both as
    its lines (every way they were cut, the way ``more_confident`` picks) and as one line; it stays a page only
    when the mean confidence of its lines is at least ``PAGE_MARGIN`` above that of the whole image.

    A line image cut from a page holds pieces of the lines above and below it, and the segmenter can find
    them as lines; read as a page, such a crop loses its words among made-up ones, while a real paragraph
    read as one line gets a low confidence. The statistic and margin were chosen on Hooker val images and
    rendered pages of a seed the benchmark does not use (583 images reaching this test; the least confident
    line, the second most confident, plain and width-weighted means, margins -0.05 to 0.15): the mean with
    0.10 cut their errors from 31,398 (always a page) to 29,103, and raised those of the paragraphs among them
    by 0.4 %; docs/RESULTS.md, "Line images read as pages".
    Returns (layout, cuts, mode, readings per way of cutting); ``known``: readings already made (``None``
    for lines not read)."""
    if text_rows(substantial_lines(found), found.char_height) > SMALL_PAGE_ROWS:
        return found, cuts, "page", dict(known or {})
    readings: dict[int, list[Any]] = {}
    for way, cut in enumerate(cuts):
        have = (known or {}).get(way) or [None] * len(cut)
        todo = [k for k, r in enumerate(have) if r is None]
        fresh = list(read([cut[k] for k in todo])) if todo else []
        merged = list(have)
        for k, r in zip(todo, fresh):
            merged[k] = r
        readings[way] = merged
    ways = [readings[w] for w in range(len(cuts))]
    page = ways[more_confident(ways)]
    whole_crop = trim_to_ink(gray)
    whole = read([whole_crop])[0]
    if page and float(np.mean([r.confidence for r in page])) >= whole.confidence + PAGE_MARGIN:
        return found, cuts, "page", readings
    found.lines = [whole_image_line(gray)]
    return found, [[whole_crop]], "line", {0: [whole]}


def cut_lines(
    gray: np.ndarray, found: PageLayout, line_crop: str = "band", source: str = "image"
) -> list[np.ndarray]:
    """The found lines of a page cut out: as bands around their baselines (``"band"``, as PAGE-XML
    training lines are), or by their outlines rotated upright and trimmed to their ink (``"outline"``, as a
    single line image is read); a page whose spacing cannot be measured (one line) uses the outlines."""
    line_crop = crop_style(line_crop, PAGE_CUTS)
    spacing = line_spacing([ln.baseline for ln in found.lines]) if line_crop == "band" else None
    if spacing is not None and found.char_height > 0:
        # widely spaced lines (double-spaced typescript) would leave the letters small in a mostly empty band:
        # the band never spans more than it does on a densely written page (the Hooker letters' spacing is
        # 2.2 to 3.7 character heights, as htrlab's segmenter measures them)
        spacing = min(spacing, MAX_SPACING_IN_CHARS * found.char_height)
    if spacing is None:
        return [cut_found_line(gray, ln) for ln in found.lines]
    # the same cut as the training lines of PAGE-XML pages (htrlab.data.linecrop)
    return [crop_baseline_band(gray, ln.baseline, spacing, ln.polygon, source=source) for ln in found.lines]


def line_cuts(
    gray: np.ndarray,
    layout: str = "auto",
    cfg: SegmentConfig | None = None,
    source: str = "image",
    line_crop: str = "auto",
) -> tuple[PageLayout, list[list[np.ndarray]], str]:
    """``lines_of`` with every way its lines are to be read: ``line_crop="auto"`` gives a page's lines cut as
    bands and as outlines (keep the reading ``more_confident`` picks), other values one way only."""
    first = "band" if line_crop == "auto" else line_crop
    found, crops, mode = lines_of(gray, layout, cfg, source, first)
    cuts = [crops]
    if mode == "page" and line_crop == "auto":
        cuts.append(cut_lines(gray, found, "outline", source))
    return found, cuts, mode


def more_confident(readings: Sequence[Sequence[Any]]) -> int:
    """Which of several readings of one page's lines (each a list of decoded lines with ``confidence``) to
    keep: the one with the highest mean line confidence.

    ``recognize --line-crop auto`` reads a page's lines cut both ways (``cut_lines``) and keeps the cut the
    model is surer of. Bands suit pages like the handwritten letters the default model was trained on;
    outlines suit printed pages and hands unlike them, whose lines it learned as tight crops (measured in
    docs/RESULTS.md, "Pages")."""
    means = [float(np.mean([d.confidence for d in r])) if len(r) else -1.0 for r in readings]
    return int(np.argmax(means))
