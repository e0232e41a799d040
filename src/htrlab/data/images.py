"""Reading images robustly and cropping text lines out of pages."""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from htrlab.errors import DataError, ImageReduced

# Pillow's own guard against decompression bombs, made explicit: 200 megapixels is far above any scanned page.
MAX_PIXELS = 200_000_000  # larger images are read at a reduced resolution (a note says so) ...
MAX_REDUCED_PIXELS = 2 * MAX_PIXELS  # ... up to this size (JPEG: 64 x MAX_PIXELS); larger ones are refused
MAX_COORD = 1_000_000  # no page coordinate lies further from the origin (1 m at 25,000 dpi)


def to_gray(im: Image.Image) -> np.ndarray:
    """Any Pillow image (L, RGB, RGBA, P, CMYK, 16-bit, ...) -> uint8 grayscale array (H, W)."""
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return scaled.astype(np.uint8)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels are paper: composite on white.
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    if im.mode == "1":
        im = im.convert("L")
    return np.asarray(im.convert("L"), dtype=np.uint8)


def load_gray(path: str | Path, page: int | None = None, dpi: float | None = None) -> np.ndarray:
    """Read an image file as a uint8 grayscale array (H, W).

    ``page`` (1-based) picks a page of a multi-page TIFF or a PDF (``None``: the first); ``dpi`` is the
    resolution PDF pages are rendered at (``None``: a scanned page's own, see ``htrlab.data.documents``).

    Raises:
        DataError: naming the file, when it is missing, unreadable, not an image, empty or too large, or has no
        such page.
    """
    p = Path(path)
    return _load_gray_cached(str(p), page, dpi)


@functools.lru_cache(maxsize=4)
def _load_gray_cached(path: str, page: int | None = None, dpi: float | None = None) -> np.ndarray:
    from htrlab.data.documents import check_file, is_pdf, render_pdf_page

    p = Path(path)
    check_file(p)
    name = f"{p}#page={page}" if page is not None else str(p)
    if is_pdf(p):
        arr = render_pdf_page(p, page or 1, dpi, MAX_PIXELS)
    else:
        arr = _read_image(p, page, name)
    if arr.size == 0 or min(arr.shape) == 0:
        raise DataError(f"image {name} is empty ({arr.shape[1]}x{arr.shape[0]} pixels)")
    arr.setflags(write=False)
    return arr


_PILLOW_LIMIT_LOCK = threading.RLock()


@contextlib.contextmanager
def _htrlab_limits() -> Iterator[None]:
    """Pillow's own pixel limit (89.5 MP, checked when a file is opened and again when it is decoded; it would
    refuse an ordinary 13,000 x 13,000 scan) is set aside while htrlab reads: :func:`load_gray` decides by
    :data:`MAX_PIXELS` and :data:`MAX_REDUCED_PIXELS` before anything is decoded. Pillow's setting is global,
    so readers take turns."""
    with _PILLOW_LIMIT_LOCK:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def open_image(p: Path) -> Image.Image:
    """Open an image file (its header: no pixels are decoded yet) under htrlab's size limits, not Pillow's."""
    with _htrlab_limits():
        return Image.open(p)


def _read_image(p: Path, page: int | None, name: str) -> np.ndarray:
    try:
        with _htrlab_limits(), open_image(p) as im:
            if page is not None:
                frames = int(getattr(im, "n_frames", 1))
                if not 1 <= page <= frames:
                    raise DataError(f"{p} has {frames} page(s): there is no page {page}")
                im.seek(page - 1)
            w, h = im.size
            scale = 1.0 if w * h <= MAX_PIXELS else math.sqrt(MAX_PIXELS / (w * h))
            if scale < 1.0:
                # JPEG decodes at 1/2, 1/4 or 1/8 of its size at once (no full-size pixels in memory); any other
                # format is decoded whole, so only up to MAX_REDUCED_PIXELS
                if im.format == "JPEG" and w * h <= 64 * MAX_PIXELS:
                    im.draft(im.mode, (math.ceil(w * scale), math.ceil(h * scale)))
                elif w * h > MAX_REDUCED_PIXELS:
                    raise DataError(
                        f"image {name} is too large: {w}x{h} pixels (htrlab reads up to {MAX_PIXELS:,} pixels "
                        f"and reduces images of up to {MAX_REDUCED_PIXELS:,}, JPEG up to {64 * MAX_PIXELS:,})"
                    )
            im.load()
            if scale < 1.0:
                small = (max(1, round(w * scale)), max(1, round(h * scale)))
                im = im.resize(small, Image.Resampling.BOX) if im.size != small else im
                warnings.warn(
                    f"{name}: {w}x{h} pixels is over htrlab's {MAX_PIXELS:,}; read at {small[0]}x{small[1]}",
                    ImageReduced,
                    stacklevel=3,
                )
            arr = to_gray(im)
    except DataError:
        raise
    except UnidentifiedImageError as exc:
        raise DataError(f"cannot read image {p}: not an image or an unsupported format") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # a backstop: not expected
        raise DataError(f"image {name} is too large to decode safely: {exc}") from exc
    except Exception as exc:  # Pillow's decoders raise many types on damaged files (TypeError, KeyError,
        # struct.error, ...): any of them means this file cannot be read
        raise DataError(f"cannot read image {name}: {exc or type(exc).__name__}") from exc
    return arr


def background_level(gray: np.ndarray, mask: np.ndarray | None = None) -> int:
    """Paper intensity: a high percentile of the pixels (inside ``mask`` when given)."""
    values = gray[mask] if mask is not None else gray.ravel()
    if values.size == 0:
        values = gray.ravel()
    return int(np.percentile(values, 90))


def parse_points(text: str, source: str) -> np.ndarray:
    """Parse PAGE-XML ``points="x1,y1 x2,y2 ..."`` (or ALTO ``"x1 y1 x2 y2 ..."``) into (K, 2) ints."""
    raw = text.replace(",", " ").split()
    if len(raw) < 4 or len(raw) % 2:
        raise DataError(f"{source}: malformed points {text[:60]!r}")
    try:
        floats = [float(v) for v in raw]
    except ValueError as exc:
        raise DataError(f"{source}: malformed points {text[:60]!r}") from exc
    if not all(math.isfinite(v) and abs(v) <= MAX_COORD for v in floats):
        raise DataError(f"{source}: points beyond any page ({text[:60]!r})")
    return np.asarray([round(v) for v in floats], dtype=np.int64).reshape(-1, 2)


def check_on_page(points: np.ndarray, width: int, height: int, source: str) -> None:
    """Refuse coordinates far outside a ``width`` x ``height`` page (more than a page's size beyond an edge),
    before any array is made from them: a baseline at x = 1e8 would otherwise allocate gigabytes.

    Raises:
        DataError: naming ``source``, the page size and the farthest point.
    """
    if points.size == 0:
        return
    xs, ys = points[:, 0], points[:, 1]
    if xs.min() < -width or xs.max() > 2 * width or ys.min() < -height or ys.max() > 2 * height:
        far = points[np.argmax(np.maximum(np.abs(xs - width / 2) / width, np.abs(ys - height / 2) / height))]
        raise DataError(
            f"{source}: point ({int(far[0])}, {int(far[1])}) lies far outside the {width} x {height} page"
        )


# Images htrlab writes for people to look at (lines drawn on a page, sample grids, a PDF page saved beside its
# XML) carry this mark, so that reading a folder again does not read them as the user's pages.
OUTPUT_MARK = "htrlab output"
_EXIF_SOFTWARE = 0x0131


def save_output_image(im: Image.Image, path: str | Path, kind: str) -> Path:
    """Save ``im`` to ``path`` (format by its suffix) marked as an htrlab output of ``kind``."""
    path = Path(path)
    mark = f"{OUTPUT_MARK}: {kind}"
    if path.suffix.lower() == ".png":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Software", mark)
        im.save(path, pnginfo=info)
    else:
        exif = Image.Exif()
        exif[_EXIF_SOFTWARE] = mark
        try:
            im.save(path, exif=exif)
        except (TypeError, ValueError, OSError):  # a format without EXIF: saved unmarked
            im.save(path)
    return path


def htrlab_output(path: str | Path) -> str | None:
    """The kind of htrlab output ``path`` is (see :func:`save_output_image`), or None for any other file."""
    try:
        with open_image(Path(path)) as im:
            mark = str(im.info.get("Software") or im.getexif().get(_EXIF_SOFTWARE) or "")
    except Exception:  # not an image, unreadable, ...: not ours; reading it later names its problem
        return None
    return mark.split(": ", 1)[-1] if mark.startswith(OUTPUT_MARK) else None


def ink_level(gray: np.ndarray) -> np.ndarray:
    """Paper-normalised ink level in [0, 1] (float32): 1 - grey / paper, the paper estimated by a median
    filter about 1/20 of the shorter side wide (at quarter resolution for images over 200 px); photos with
    shading and stains become flat."""
    g = gray.astype(np.float32)
    reduce = min(g.shape) > 200
    small = cv2.resize(g, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA) if reduce else g
    k = max(15, (min(gray.shape) // 20) | 1)
    kernel = min(max(3, (k // 4 if reduce else k) | 1), 255)
    bg: np.ndarray = cv2.medianBlur(np.clip(small, 0, 255).astype(np.uint8), kernel).astype(np.float32)
    if reduce:
        bg = cv2.resize(bg, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = np.clip(1.0 - g / np.maximum(bg, 1.0), 0.0, 1.0)
    return out


def ink_map(gray: np.ndarray, level: np.ndarray | None = None) -> np.ndarray:
    """Binary ink (uint8 0/1) of a grey image: Otsu's threshold (at least 40/255 of ink contrast) on its
    ink level (``ink_level``, or ``level`` when the caller has it)."""
    ink = ink_level(gray) if level is None else level
    u8 = (ink * 255).astype(np.uint8)
    t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return (u8 > max(t, 40)).astype(np.uint8)
