"""Rendering text as handwriting-like line images, deterministically by seed.

Each sample ``i`` of a run with seed ``s`` uses its own generator ``default_rng([s, i])``, so a dataset is the
same whatever order or number of processes made it. Variation: font, size, stroke width, slant, baseline
wobble, letter spacing, elastic distortion, ink colour and paper background, scanning noise. Text comes from
corpora (one sentence per line) cut into characters, words or lines, so models see all three levels.
"""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from htrlab.data.augment import elastic_field
from htrlab.errors import ConfigError, DataError
from htrlab.text.normalize import normalize_text

FONT_SUFFIXES = (".ttf", ".otf", ".woff", ".woff2")


@dataclass
class SynthConfig:
    """How synthetic lines vary. Ranges are sampled uniformly per line."""

    font_size: tuple[int, int] = (36, 60)  # pixels
    p_char: float = 0.05  # share of samples that are a few isolated characters
    p_word: float = 0.25  # share of single words; the rest are lines of 2..max_words words
    max_words: int = 9
    max_chars: int = 70
    slant: float = 0.3  # max |shear|
    wobble: float = 3.0  # max baseline wobble amplitude, pixels
    spacing: tuple[float, float] = (-1.0, 3.0)  # extra pixels between letters
    stroke: tuple[int, int] = (-1, 2)  # erosion (<0) .. dilation (>0) steps
    elastic: float = 1.5  # displacement amplitude, pixels
    ink: tuple[int, int] = (10, 110)  # ink grey level
    paper: tuple[int, int] = (190, 250)  # paper grey level
    noise: float = 8.0  # max Gaussian noise std (grey levels)
    blur: float = 0.8  # max blur sigma
    # cut the line as page lines are cut (ink box, outline, box or band, with the lines above and below it
    # reaching in): what a recognizer meets in users' crops; off, a line is its ink plus a fixed margin
    crop_styles: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.p_char + self.p_word <= 1:
            raise ConfigError("synth: p_char + p_word must be in [0, 1]")


def printed_config() -> SynthConfig:
    """Variation for printed and typed lines: upright, straight baselines, even spacing, light scanning damage."""
    return SynthConfig(
        font_size=(26, 52),
        p_char=0.02,
        p_word=0.15,
        max_words=12,
        max_chars=80,
        slant=0.0,
        wobble=0.6,
        spacing=(-0.3, 1.5),
        stroke=(0, 1),
        elastic=0.3,
        ink=(0, 90),
        paper=(195, 255),
        noise=6.0,
        blur=0.9,
    )


STYLES = {"handwriting": SynthConfig, "printed": printed_config}


@dataclass
class FontInfo:
    path: Path
    chars: frozenset[str]
    caps_only: bool

    @property
    def name(self) -> str:
        return self.path.stem


def _cmap(path: Path) -> frozenset[str]:
    from fontTools.ttLib import TTFont  # fontTools comes with matplotlib

    with TTFont(str(path), lazy=True, fontNumber=0) as tt:
        cmap = tt.getBestCmap() or {}
    return frozenset(chr(c) for c in cmap)


def font_dirs() -> list[Path]:
    """Where fonts are looked for: $HTRLAB_FONTS (os.pathsep-separated), then ~/.local/share/htrlab/fonts."""
    env = os.environ.get("HTRLAB_FONTS", "")
    dirs = [Path(p) for p in env.split(os.pathsep) if p]
    return [*dirs, Path.home() / ".local" / "share" / "htrlab" / "fonts"]


def find_fonts(paths: Sequence[str | Path] | None = None) -> list[FontInfo]:
    """Fonts under ``paths`` (files or folders, searched recursively; default :func:`font_dirs`).

    A font whose lower-case letters are missing or are its capitals' glyphs is marked ``caps_only``; its
    samples are upper-cased so the images and labels agree.

    Raises:
        DataError: when no usable font is found.
    """
    roots = [Path(p) for p in (paths or font_dirs())]
    files: list[Path] = []
    for r in roots:
        if r.is_file():
            files.append(r)
        elif r.is_dir():
            files += sorted(p for p in r.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)
    fonts = []
    for f in files:
        try:
            chars = _cmap(f)
            font = ImageFont.truetype(str(f), 40)
        except (
            Exception
        ):  # fontTools/FreeType raise many types for broken files; such a font is just unusable
            continue
        if not set("AEIOUaeiou") & chars:
            continue
        lower_missing = not set("abcdefghijklmnopqrstuvwxyz") <= chars
        # letters whose small and capital forms differ in ordinary fonts; in capitals-only fonts they match
        same = (
            float(np.mean([_similarity(_glyph(font, c.lower()), _glyph(font, c)) for c in "ABDEGHQR"])) > 0.5
        )
        fonts.append(FontInfo(f, chars, caps_only=lower_missing or same))
    if not fonts:
        raise DataError(
            f"no usable fonts found in {', '.join(map(str, roots))}; run scripts/fetch_fonts.sh or pass --fonts DIR"
        )
    return fonts


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    """The glyph cropped to its ink and scaled to 24 x 24 (so small capitals match their capitals)."""
    im = Image.new("L", (80, 80), 0)
    ImageDraw.Draw(im).text((10, 10), ch, fill=255, font=font)
    arr = np.asarray(im, dtype=np.float32)
    ys, xs = np.nonzero(arr > 64)
    if len(ys) == 0:
        return np.zeros((24, 24), np.float32)
    return cv2.resize(
        arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], (24, 24), interpolation=cv2.INTER_AREA
    )


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two normalised glyph images (ordinary fonts: below 0.4 for a/A, b/B, ...;
    capitals-only fonts: above 0.55, measured on the Debian handwriting fonts)."""
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def load_corpus(paths: Sequence[str | Path], max_lines: int = 0) -> list[str]:
    """Sentences from text files (one per line; IAM ``lines.txt`` rows are recognised and their ``|`` made
    spaces), NFC-normalised."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        try:
            rows = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read corpus {path}: {exc}") from exc
        for row in rows:
            if not row.strip() or row.startswith("#"):
                continue
            parts = row.split(" ")
            if len(parts) >= 9 and parts[1] in ("ok", "err") and "-" in parts[0]:
                row = " ".join(parts[8:]).replace("|", " ")
            text = normalize_text(row)
            if text:
                out.append(text)
            if max_lines and len(out) >= max_lines:
                return out
    if not out:
        raise DataError(f"corpus {', '.join(map(str, paths))} holds no text")
    return out


def sample_text(corpus: Sequence[str], rng: np.random.Generator, cfg: SynthConfig) -> str:
    """A character group, a word or a line cut from a random sentence."""
    words = corpus[int(rng.integers(len(corpus)))].split()
    r = rng.random()
    if r < cfg.p_char:
        word = words[int(rng.integers(len(words)))]
        n = int(rng.integers(1, min(4, len(word)) + 1))
        start = int(rng.integers(0, len(word) - n + 1))
        return word[start : start + n]
    if r < cfg.p_char + cfg.p_word:
        return words[int(rng.integers(len(words)))]
    n = int(rng.integers(2, cfg.max_words + 1))
    start = int(rng.integers(0, max(1, len(words) - n + 1)))
    text = " ".join(words[start : start + n])
    return text[: cfg.max_chars].rstrip()


def render_text(
    text: str, font: FontInfo, rng: np.random.Generator, cfg: SynthConfig, context: Sequence[str] = ()
) -> np.ndarray:
    """Render ``text`` as a grayscale uint8 line image (dark ink on paper).

    With ``cfg.crop_styles`` the line is cut as page lines are (see :func:`_page_cut`): ``context`` holds the
    texts of the lines written above and below it, whose strokes reach into box and band cuts.

    Raises:
        DataError: if the font lacks a character of ``text``.
    """
    missing = sorted({c for c in text if c != " " and c not in font.chars})
    if missing:
        raise DataError(f"font {font.path} has no glyph for {missing!r}")
    size = int(rng.integers(cfg.font_size[0], cfg.font_size[1] + 1))
    ft = ImageFont.truetype(str(font.path), size)
    mask, base = _ink_mask(text, ft, size, rng, cfg)
    if cfg.crop_styles:
        near = [_ink_mask(t, ft, size, rng, cfg) for t in context[:2] if t.strip()]
        mask = _page_cut(mask, base, near, size, rng)
    else:
        mask = _crop_to_ink(mask, margin=int(size * 0.25))
    # ink on paper, with a low-frequency paper texture and scanning noise
    paper = float(rng.uniform(*cfg.paper))
    ink = float(rng.uniform(*cfg.ink))
    h, w = mask.shape
    texture = cv2.resize(
        rng.normal(0, 6, (max(2, h // 20), max(2, w // 20))).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    img = paper + texture
    img = img * (1 - mask) + ink * mask
    sigma = float(rng.uniform(0, cfg.blur))
    if sigma > 0.2:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(0, cfg.noise), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _ink_mask(
    text: str, ft: ImageFont.FreeTypeFont, size: int, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, float]:
    """The written line as an ink mask in [0, 1] (uncropped) and the row of its baseline."""
    spacing = float(rng.uniform(*cfg.spacing))
    amp = float(rng.uniform(0, cfg.wobble))
    period = float(rng.uniform(80, 300))
    phase = float(rng.uniform(0, 2 * np.pi))
    ascent, descent = ft.getmetrics()
    # some fonts report a negative descent, and swash glyphs can reach past the metrics: size the canvas by
    # the text's own bounding box too, so no stroke is cut off
    _, top, _, bottom = ft.getbbox(text)
    lift = max(0, -top)
    width = int(sum(ft.getlength(c) + spacing for c in text) + 2 * size + 10)
    height = int(max(ascent + abs(descent), bottom + lift) + 2 * amp + size * 0.6)
    canvas = Image.new("L", (max(width, 8), max(height, 8)), 0)
    draw = ImageDraw.Draw(canvas)
    x = size * 0.5
    for ch in text:
        y = size * 0.3 + lift + amp * (1 + np.sin(2 * np.pi * x / period + phase)) + float(rng.normal(0, 0.3))
        draw.text(
            (x, y), ch, fill=255, font=ft
        )  # (x, y) is the glyph's ascender line: its baseline is y + ascent
        x += ft.getlength(ch) + spacing
    mask: np.ndarray = np.asarray(canvas, dtype=np.float32) / 255.0
    # stroke width
    steps = int(rng.integers(cfg.stroke[0], cfg.stroke[1] + 1))
    kernel = np.ones((2, 2), np.uint8)
    for _ in range(abs(steps)):
        mask = cv2.dilate(mask, kernel) if steps > 0 else cv2.erode(mask, kernel)
    # slant (rows, and so the baseline, stay where they are)
    shear = float(rng.uniform(-cfg.slant, cfg.slant))
    h, w = mask.shape
    pad = int(abs(shear) * h) + 2
    m = np.array([[1, shear, pad - shear * h / 2], [0, 1, 0]], dtype=np.float32)
    mask = cv2.warpAffine(mask, m, (w + 2 * pad, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    if cfg.elastic > 0:
        mask = elastic_field(mask, rng, cfg.elastic)
    return mask, size * 0.3 + lift + amp + ascent


def _page_cut(
    mask: np.ndarray,
    base: float,
    near: Sequence[tuple[np.ndarray, float]],
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Cut the line ``mask`` (baseline at row ``base``) the way page lines are cut (htrlab.data.linecrop), one
    style drawn at random: a tight box of its ink; its outline, which may clip the tips of ascenders and
    descenders as Transkribus-style outlines do, with extra paper around; the box of the line on the page,
    where the lines written above and below (``near``: masks and baselines, one line spacing away) reach in;
    or a band around the baseline sized by the line spacing, which both neighbours reach into and which may
    cut off the line's own tall strokes."""
    ys, xs = np.nonzero(mask > 0.1)
    if len(ys) == 0:
        return mask
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    style = int(rng.integers(4))
    if style == 0:  # ink
        t, b, left, right = (int(rng.uniform(0, f * size)) for f in (0.1, 0.1, 0.4, 0.4))
        return _take(mask, y0 - t, y1 + b, x0 - left, x1 + right)
    if style == 1:  # outline
        mask = mask.copy()
        if rng.random() < 0.5:
            cols = np.arange(mask.shape[1])
            for edge, sign in ((y0, 1), (y1, -1)):
                depth = rng.uniform(0, 0.2 * size)
                wave = 0.5 + 0.5 * np.sin(
                    2 * np.pi * cols / rng.uniform(0.5 * size, 3 * size) + rng.uniform(0, 7)
                )
                limit = (edge + sign * depth * wave).astype(int)
                rows = np.arange(mask.shape[0])[:, None]
                mask[(rows < limit[None]) if sign > 0 else (rows >= limit[None])] = 0.0
        t, b, left, right = (int(rng.uniform(0.02 * size, f * size)) for f in (0.4, 0.4, 0.5, 0.5))
        return _take(mask, y0 - t, y1 + b, x0 - left, x1 + right)
    spacing = size * rng.uniform(0.9, 1.4)
    pad = int(3 * spacing)
    page = cv2.copyMakeBorder(mask, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=0.0)
    for k, (other, other_base) in enumerate(near):
        target = pad + base + (-spacing if k == 0 else spacing)  # where its baseline falls on the page
        top = round(target - other_base)
        shift = int(rng.uniform(-0.3, 0.3) * mask.shape[1])
        _paste_max(page, other, top, shift)
    if style == 2:  # box
        t, b, left, right = (int(rng.uniform(0, f * size)) for f in (0.15, 0.15, 0.4, 0.4))
        return _take(page, pad + y0 - t, pad + y1 + b, x0 - left, x1 + right)
    top = round(pad + base - 0.8 * spacing * rng.uniform(0.8, 1.25))  # band
    bottom = round(pad + base + 0.4 * spacing * rng.uniform(0.75, 1.35))
    left, right = (int(rng.uniform(0, 0.5 * spacing)) for _ in range(2))
    return _take(page, top, bottom, x0 - left, x1 + right)


def _take(mask: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Rows r0:r1 and columns c0:c1 of ``mask``, with no ink where they reach beyond it."""
    h, w = mask.shape
    out = np.zeros((max(1, r1 - r0), max(1, c1 - c0)), np.float32)
    a0, a1, b0, b1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if a1 > a0 and b1 > b0:
        out[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = mask[a0:a1, b0:b1]
    return out


def _paste_max(page: np.ndarray, other: np.ndarray, top: int, left: int) -> None:
    """Write ``other`` onto ``page`` at (top, left) where it is darker (ink is the maximum), clipped."""
    h, w = page.shape
    oh, ow = other.shape
    a0, a1, b0, b1 = max(top, 0), min(top + oh, h), max(left, 0), min(left + ow, w)
    if a1 > a0 and b1 > b0:
        region = page[a0:a1, b0:b1]
        np.maximum(region, other[a0 - top : a1 - top, b0 - left : b1 - left], out=region)


def _crop_to_ink(mask: np.ndarray, margin: int) -> np.ndarray:
    ys, xs = np.nonzero(mask > 0.1)
    if len(ys) == 0:
        return mask
    y0, y1 = max(0, ys.min() - margin), min(mask.shape[0], ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(mask.shape[1], xs.max() + margin + 1)
    return mask[y0:y1, x0:x1]


def _neighbour_text(corpus: Sequence[str], font: FontInfo, rng: np.random.Generator, cfg: SynthConfig) -> str:
    """A line of several words written above or below a sample (only its strokes show), in what the font
    can write."""
    words = corpus[int(rng.integers(len(corpus)))].split()
    n = int(rng.integers(3, cfg.max_words + 4))
    start = int(rng.integers(0, max(1, len(words) - n + 1)))
    text = " ".join(words[start : start + n])[: cfg.max_chars + 20]
    if font.caps_only:
        text = text.upper()
    return "".join(c for c in text if c == " " or (c in font.chars and _printable(c)))


def _printable(text: str) -> bool:
    return all(unicodedata.category(c)[0] in "LNPSZ" for c in text)


def generate(
    n: int,
    out_dir: str | Path,
    fonts: Sequence[FontInfo],
    corpus: Sequence[str],
    seed: int = 0,
    cfg: SynthConfig | None = None,
    start: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Write ``n`` samples as ``OUT/<font>/<index>.png`` + ``.txt`` (the folder layout htrlab reads; the font
    folder is the "document", so splits made from it hold out whole fonts). Returns counts and lines/s.
    """
    from tqdm import tqdm

    cfg = cfg or SynthConfig()
    out = Path(out_dir)
    t0 = time.perf_counter()
    written = 0
    for i in tqdm(range(start, start + n), disable=not progress, desc="synth", unit="line", leave=False):
        rng = np.random.default_rng([seed, i])
        font = fonts[int(rng.integers(len(fonts)))]
        for _ in range(20):  # a text the font can write
            text = sample_text(corpus, rng, cfg)
            if font.caps_only:
                text = text.upper()
            if text.strip() and _printable(text) and all(c == " " or c in font.chars for c in text):
                break
        else:
            continue
        context = [_neighbour_text(corpus, font, rng, cfg) for _ in range(2)] if cfg.crop_styles else []
        img = render_text(text, font, rng, cfg, context)
        folder = out / font.name
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:07d}.png", optimize=False, compress_level=1)
        (folder / f"{i:07d}.txt").write_text(text + "\n", encoding="utf-8")
        written += 1
    secs = time.perf_counter() - t0
    return {
        "written": written,
        "seconds": round(secs, 2),
        "lines_per_s": round(written / secs, 1) if secs else 0.0,
    }
