"""What each registered architecture is, without importing PyTorch: its one-line description and its parameter
count (``fixed + per_class * classes``, every architecture's count is linear in its output classes), so that
``htrlab models`` answers at once. ``htrlab.models.registry`` takes the descriptions from here, and
tests/test_models.py builds every architecture to check the counts."""

from __future__ import annotations

from typing import NamedTuple


class CatalogEntry(NamedTuple):
    description: str
    fixed: int  # parameters that do not depend on the number of output classes
    per_class: int  # parameters added per output class (the output layer, and token embeddings)

    def params(self, classes: int) -> int:
        return self.fixed + self.per_class * classes


def _trocr(size: str) -> str:
    return f"TrOCR-{size}-style ViT encoder + transformer decoder (autoregressive), character tokens"


CATALOG: dict[str, CatalogEntry] = {
    "crnn-vgg": CatalogEntry(
        "CRNN (VGG + 2 BiLSTM, CTC), EasyOCR's layout; pretrained=easyocr-english-g2 to fine-tune",
        3756416,
        257,
    ),
    "htr-jand": CatalogEntry(
        "HTR-JAND teacher: gated CNN + SE, 4-layer BiLSTM, self-attention, CTC", 3205740, 257
    ),
    "htr-jand-student": CatalogEntry(
        "HTR-JAND student: about half the teacher's size, for knowledge distillation", 1583122, 193
    ),
    "ppocrv5-rec": CatalogEntry(
        "PP-OCRv5 mobile recognizer (ONNX -> torch), pretrained, CTC; the default model's architecture",
        1886724,
        121,
    ),
    "trocr-base": CatalogEntry(_trocr("base"), 281889536, 1024),
    "trocr-large": CatalogEntry(_trocr("large"), 505781248, 1024),
    "trocr-small": CatalogEntry(_trocr("small"), 28658048, 256),
    "vit-ctc": CatalogEntry(
        "ViT encoder over the line (TrOCR's encoder family) + linear CTC head, non-autoregressive",
        21811584,
        1537,
    ),
}
