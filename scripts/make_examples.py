"""Render the example line images bundled in src/htrlab/examples (Pillow's built-in font, dark ink on paper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LINES = {
    "example-1": "My dear Dyer, I return the letter",
    "example-2": "with many thanks for the seeds",
    "example-3": "Kew, 21 December 1895",
}


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "src" / "htrlab" / "examples"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    font = ImageFont.load_default(size=40)
    for name, text in LINES.items():
        left, top, right, bottom = font.getbbox(text)
        im = Image.new("L", (right - left + 40, bottom - top + 30), 236)
        ImageDraw.Draw(im).text((20 - left, 15 - top), text, fill=40, font=font)
        im = im.filter(ImageFilter.GaussianBlur(0.6))
        arr = np.asarray(im, dtype=np.float32) + rng.normal(0, 6, (im.height, im.width))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out / f"{name}.png", optimize=True)
        (out / f"{name}.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
