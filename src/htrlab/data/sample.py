"""The unit every reader yields: one text line (or word) image with its transcription."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from htrlab.data.images import check_on_page, crop_box, crop_polygon, load_gray
from htrlab.data.linecrop import crop_baseline_band


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
        crop: how a line is cut from its page: ``"baseline"`` (a band around the baseline, straightened; used
            when the line has a baseline and its page a line spacing) or ``"polygon"`` (the outline's box,
            pixels outside the outline set to paper).
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
    crop: str = "baseline"

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
        if self.crop == "baseline" and self.baseline is not None and self.line_spacing:
            return crop_baseline_band(page, self.baseline, self.line_spacing, self.polygon, source=source)
        if self.polygon is not None:
            return crop_polygon(page, self.polygon, source)
        if self.box is not None:
            return crop_box(page, *self.box, source=source)
        return np.array(page)
