"""Render the README's example images (a word, a line, a paragraph, a printed line) with fonts that the
default model never trained on (the held-out families of benchmarks/make_synth_sets.py), so the README shows
what htrlab does on writing it has not seen. Needs the fonts: scripts/fetch_fonts.sh all.

    python scripts/make_readme_examples.py docs/img/examples
    htrlab recognize docs/img/examples/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from htrlab.synth.render import SynthConfig, find_fonts, printed_config, render_text

HOME = Path.home() / ".local" / "share" / "htrlab"


def font(folder: str, stem: str):  # type: ignore[no-untyped-def]
    fonts = [f for f in find_fonts([HOME / folder]) if f.path.stem == stem]
    if not fonts:
        raise SystemExit(f"font {stem} not found under {HOME / folder}: run scripts/fetch_fonts.sh all")
    return fonts[0]


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/examples")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    hand = SynthConfig(font_size=(48, 48), slant=0.15, wobble=1.5, elastic=0.8, noise=4.0, blur=0.5)
    kristi = font("fonts", "Kristi")
    Image.fromarray(render_text("Botany", kristi, rng, hand)).save(out / "word.png")
    Image.fromarray(render_text("The seeds arrived safely at Kew", kristi, rng, hand)).save(out / "line.png")
    para = [
        render_text(t, kristi, rng, hand)
        for t in (
            "My dear Hooker, the plants you sent",
            "from the Himalaya are doing well",
            "in the new glass house this spring.",
        )
    ]
    w = max(p.shape[1] for p in para) + 40
    page = np.full((sum(p.shape[0] for p in para) + 12 * len(para) + 40, w), 238, np.uint8)
    y = 20
    for p in para:
        page[y : y + p.shape[0], 20 : 20 + p.shape[1]] = np.minimum(p, 238)
        y += p.shape[0] + 12
    Image.fromarray(page).save(out / "paragraph.png")
    printed = printed_config()
    printed.font_size = (34, 34)
    caladea = font("printed-fonts", "Caladea-Regular")
    line = render_text("Printed text is read as well: 12 May 1851.", caladea, rng, printed)
    Image.fromarray(line).save(out / "printed.png")
    print("\n".join(str(p) for p in sorted(out.glob("*.png"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
