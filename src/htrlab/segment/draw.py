"""``--show``: the found lines (outline, baseline, reading-order number and text) drawn over the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from htrlab.data.images import save_output_image
from htrlab.data.layout import PageLayout

_COLOURS = [(220, 40, 40), (30, 120, 220), (20, 160, 60), (200, 120, 0), (150, 50, 200)]


def draw_layout(gray: np.ndarray, layout: PageLayout, out: str | Path, max_side: int = 2000) -> Path:
    """Write a PNG of ``gray`` with every line of ``layout`` drawn; text (when recognised) above each line."""
    im = Image.fromarray(gray).convert("RGB")
    scale = min(1.0, max_side / max(im.size))
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    d = ImageDraw.Draw(im, "RGBA")
    size = max(10, int(layout.char_height * scale * 0.8)) if layout.char_height else 14
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    for k, ln in enumerate(layout.lines):
        c = _COLOURS[k % len(_COLOURS)]
        poly = [tuple(map(float, p * scale)) for p in ln.polygon]
        if len(poly) >= 3:
            d.polygon(poly, outline=(*c, 255), fill=(*c, 40))
        d.line([tuple(map(float, p * scale)) for p in ln.baseline], fill=(*c, 255), width=2)
        label = f"{k + 1}" + (f" {ln.text}" if ln.text else "")
        x, y = float(ln.box[0] * scale), float(ln.box[1] * scale)
        d.text((x, max(0.0, y - size)), label, fill=(*c, 255), font=font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_output_image(im, out, "lines drawn on a page")
