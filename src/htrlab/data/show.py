"""``htrlab data show``: a picture of samples exactly as the model sees them, with their labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from htrlab.data.augment import AugmentConfig, augment
from htrlab.data.images import save_output_image
from htrlab.data.preprocess import PreprocessConfig, preprocess, to_display
from htrlab.data.sample import LineSample
from htrlab.errors import DataError


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def render_grid(
    samples: Sequence[LineSample],
    cfg: PreprocessConfig,
    out: str | Path,
    augment_cfg: AugmentConfig | None = None,
    seed: int = 0,
    max_width: int = 1400,
) -> Path:
    """Draw each sample's preprocessed image (and, when given, an augmented copy) with its id and label."""
    rng = np.random.default_rng(seed)
    font = _font(14)
    rows: list[tuple[np.ndarray, str]] = []
    for s in samples:
        try:
            x = preprocess(s.load_image(), cfg, s.id)
        except DataError as exc:
            rows.append((np.full((cfg.height, 200), 255, np.uint8), f"{s.id}: UNREADABLE ({exc})"))
            continue
        label = f"{s.id} [{s.split or '-'}]  {s.text!r}"
        rows.append((to_display(x), label))
        if augment_cfg is not None and augment_cfg.enabled:
            rows.append((to_display(augment(x, rng, augment_cfg)), "   (augmented)"))
    if not rows:
        raise DataError("no samples to show")
    text_h = 18
    width = min(max_width, max(max(im.shape[1] for im, _ in rows), 400)) + 10
    height = sum(im.shape[0] + text_h + 8 for im, _ in rows) + 4
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = 4
    for im, label in rows:
        draw.text((5, y), label, fill=(20, 60, 160), font=font)
        y += text_h
        shown = Image.fromarray(im[:, : width - 10])
        canvas.paste(shown, (5, y))
        draw.rectangle([4, y - 1, 5 + shown.width, y + shown.height], outline=(200, 200, 200))
        y += im.shape[0] + 8
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_output_image(canvas, out, "sample grid")
