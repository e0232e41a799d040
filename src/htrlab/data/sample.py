"""The unit every reader yields: one text line (or word) image with its transcription."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from htrlab.data.images import crop_box, crop_polygon, load_gray


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
    """

    id: str
    text: str
    image_path: Path
    doc_id: str
    writer_id: str | None = None
    split: str | None = None
    polygon: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None

    def load_image(self) -> np.ndarray:
        """Grayscale uint8 pixels (H, W) of this line (cropped from its page when needed)."""
        page = load_gray(self.image_path)
        source = f"{self.image_path} line {self.id}"
        if self.polygon is not None:
            return crop_polygon(page, self.polygon, source)
        if self.box is not None:
            return crop_box(page, *self.box, source=source)
        return np.array(page)
