"""Rendered pages of text lines with their exact baselines: material for line detectors and layout benchmarks
that is not tied to one collection's hand and layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from htrlab.synth.render import FontInfo


def synthetic_page(
    rng: np.random.Generator, fonts: Sequence[FontInfo], corpus: Sequence[str]
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[str]]:
    """A rendered page (grey), its lines' baselines, outlines (the text's box) and texts: lines of ``corpus`` text in one of ``fonts``
    (``htrlab.synth.render.FontInfo``), at a random size, spacing, margin and indentation, with now and then a
    short line at the right (a date or a signature), on shaded, noisy paper. Pillow's baseline anchor gives
    the exact baselines. For a line detector that is not tied to one collection's hand and layout."""
    from PIL import Image, ImageDraw, ImageFont

    W, H = int(rng.integers(900, 1700)), int(rng.integers(700, 2100))
    paper, ink = int(rng.integers(190, 250)), int(rng.integers(0, 100))
    info = fonts[int(rng.integers(len(fonts)))]
    size = int(rng.integers(16, 50))
    font = ImageFont.truetype(str(info.path), size)
    spacing = size * float(rng.uniform(1.15, 2.6))
    im = Image.new("L", (W, H), paper)
    draw = ImageDraw.Draw(im)
    left = int(W * rng.uniform(0.03, 0.18))
    right = W - int(W * rng.uniform(0.03, 0.12))
    baselines: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    texts: list[str] = []
    y = float(rng.uniform(0.05, 0.2) * H) + size
    words = " ".join(corpus[int(rng.integers(len(corpus)))] for _ in range(40)).split()
    w_i = 0
    while y < H - size and w_i < len(words) - 1:
        x = left + (int(rng.integers(0, 5)) * size if rng.random() < 0.2 else 0)
        limit = right if rng.random() < 0.8 else int(x + (right - x) * rng.uniform(0.2, 0.9))
        if rng.random() < 0.08:  # a short line at the right: date, place, signature
            x, limit = int(right - (right - left) * rng.uniform(0.2, 0.4)), right
        line = ""
        while w_i < len(words):
            cand = (line + " " + words[w_i]).strip()
            if info.caps_only:
                cand = cand.upper()
            if draw.textlength(cand, font=font) > limit - x and line:
                break
            line = cand
            w_i += 1
        if not line:
            break
        draw.text((x, y), line, fill=ink, font=font, anchor="ls")
        baselines.append(np.array([[x, y], [x + draw.textlength(line, font=font), y]], dtype=np.float64))
        bx0, by0, bx1, by1 = draw.textbbox((x, y), line, font=font, anchor="ls")
        boxes.append(np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]], dtype=np.float64))
        texts.append(line)
        y += spacing * (
            float(rng.uniform(1.6, 2.2)) if rng.random() < 0.1 else 1.0
        )  # a paragraph gap now and then
    arr = np.asarray(im, dtype=np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    shade = 1.0 - float(rng.uniform(0, 0.35)) * (xx / W if rng.random() < 0.5 else yy / H)
    arr = arr * shade + rng.normal(0, float(rng.uniform(1, 8)), arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8), baselines, boxes, texts
