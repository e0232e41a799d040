"""The unit every reader yields: one text line (or word) image with its transcription."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from htrlab.data.images import check_on_page, load_gray
from htrlab.data.linecrop import LINE_CROPS, cut_line

CUT_MARK = "~"  # joins a line's id and the crop style of one of its cuts (data.line_crop: mixed)


@dataclass
class LineSample:
    """One line image and its transcription.

    Attributes:
        id: unique id within the dataset (e.g. ``page/lineid``).
        text: NFC-normalised transcription ("" when unknown).
        image_path: the file holding the pixels (a line image, or a page the line is cropped from).
        doc_id: the document (page, letter, form) the line comes from; splits never cut a document.
        writer_id: the writer, where known.
        split: ``train``/``val``/``test``/... where the data says, else ``None``.
        polygon: (K, 2) [x, y] line outline on the page, for page-level formats.
        box: (x, y, w, h) line box on the page, when there is no polygon.
        baseline: (M, 2) [x, y] baseline on the page, where the format gives one.
        line_spacing: the page's line spacing in pixels (see :func:`htrlab.data.linecrop.line_spacing`).
        crop: how a line is cut from its page, one of :data:`htrlab.data.linecrop.LINE_CROPS` (``"band"``
            around the baseline, straightened, where the line has a baseline and its page a line spacing;
            ``"outline"`` masked to paper; the outline's ``"box"``; the ``"ink"`` box); see
            :func:`htrlab.data.linecrop.cut_line`.
        variant: 0 = the style's plain cut; ``k > 0`` = the k-th randomly varied cut of this line (margins,
            paper tone; reproducible), as training draws them.
    """

    id: str
    text: str
    image_path: Path
    doc_id: str
    writer_id: str | None = None
    split: str | None = None
    polygon: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None
    baseline: np.ndarray | None = None
    line_spacing: float | None = None
    crop: str = "band"
    variant: int = 0

    def load_image(self) -> np.ndarray:
        """Grayscale uint8 pixels (H, W) of this line (cropped from its page when needed)."""
        page = load_gray(self.image_path)
        source = f"{self.image_path} line {self.id}"
        for points in (self.polygon, self.baseline):
            if points is not None:
                check_on_page(points, page.shape[1], page.shape[0], source)
        if self.box is not None:
            x, y, w, h = self.box
            check_on_page(np.array([[x, y], [x + w, y + h]]), page.shape[1], page.shape[0], source)
        rng = None
        if self.variant:
            rng = np.random.default_rng([self.variant, zlib.crc32(self.id.encode())])
        return cut_line(
            page,
            self.crop,
            polygon=self.polygon,
            baseline=self.baseline,
            box=self.box,
            spacing=self.line_spacing,
            rng=rng,
            source=source,
        )


def cut_every_way(samples: list[LineSample], crop: str, variants: int) -> list[LineSample]:
    """The lines as training or validation reads them under ``data.line_crop``: as they are for one style;
    for ``"mixed"``, each page line once per style of :data:`LINE_CROPS` (``variants == 0``: the plain cut,
    for validation) or ``variants`` randomly varied cuts per style (training). The copies' ids are the line's
    with ``~style`` or ``~style<k>`` appended (``@crop`` marks an extra set's lines cut another way: other
    training lines, not cuts to draw among); lines that are images of their own (no outline, box or baseline)
    stay single."""
    if crop != "mixed":
        return samples
    out = []
    for s in samples:
        if s.polygon is None and s.box is None and s.baseline is None:
            out.append(s)
            continue
        for style in LINE_CROPS:
            for k in range(1, variants + 1) if variants else (0,):
                out.append(replace(s, id=f"{s.id}{CUT_MARK}{style}{k or ''}", crop=style, variant=k))
    return out


def style_of_cut(line_id: str) -> str | None:
    """The crop style of a cut that :func:`cut_every_way` named (``line~outline2`` -> ``outline``); ``None`` for a
    line that is not such a cut (prepared lines and packs keep only the id)."""
    if CUT_MARK not in line_id:
        return None
    return line_id.split(CUT_MARK, 1)[1].rstrip("0123456789")


def one_style_each(samples: list[LineSample], seed: int) -> list[LineSample]:
    """Of :func:`cut_every_way`'s ``"mixed"`` output, the cuts of one style per page line, the style drawn
    at random (seeded, the same for the same lines): every style is represented, each line once, a quarter of
    the pixels. Lines that are images of their own pass through."""
    rng = np.random.default_rng(seed)
    chosen: dict[str, str] = {}
    out = []
    for s in samples:
        if CUT_MARK not in s.id:
            out.append(s)
            continue
        line = s.id.split(CUT_MARK, 1)[0]
        if line not in chosen:
            chosen[line] = LINE_CROPS[int(rng.integers(len(LINE_CROPS)))]
        if s.crop == chosen[line]:
            out.append(s)
    return out
