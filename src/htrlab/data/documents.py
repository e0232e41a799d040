"""The user's inputs as pages: single images, folders of them, multi-page TIFFs and PDFs.

``htrlab recognize`` and ``htrlab segment`` take any mix of these. A folder stands for every image and PDF
under it (sorted, hidden files left out); a multi-page TIFF or a PDF stands for each of its pages, named
``FILE#page=N`` (the PDF open-parameter form) in text output. PDF pages are rasterised with PDFium
(``pypdfium2``): a page that is one scanned image is rendered at that image's own resolution (no resampling
of the scan), any other page at ``PDF_DPI``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from htrlab.errors import DataError, ImageReduced

# What a folder given as input is searched for; other files in it (XML, text, ...) are left alone.
IMAGE_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".j2k",
        ".tif",
        ".tiff",
        ".bmp",
        ".gif",
        ".webp",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".pdf",
    ]
)
PDF_DPI = 300.0  # a PDF page that is not one scanned image (typeset text, several images) is rendered at this
MIN_SCAN_DPI, MAX_SCAN_DPI = 72.0, 600.0  # a scanned page's own resolution is used when it lies in this range
SCAN_COVER = 0.8  # one image covering this share of the page makes it a scan


@dataclass(frozen=True)
class PageSource:
    """One page to read: a file, and the page of it (1-based) when the file holds several."""

    path: Path
    page: int | None = None

    def __str__(self) -> str:
        return f"{self.path}#page={self.page}" if self.page is not None else str(self.path)

    @property
    def stem(self) -> str:
        """A file name stem for this page's outputs (``letter-p002`` for page 2 of ``letter.pdf``)."""
        return f"{self.path.stem}-p{self.page:03d}" if self.page is not None else self.path.stem

    @property
    def has_image_file(self) -> bool:
        """Whether an image viewer (and a PAGE-XML or ALTO reader) can open ``path`` as this page's image."""
        return self.page is None and not is_pdf(self.path)


def is_pdf(path: str | Path) -> bool:
    """A PDF by its name, or by its first bytes when it has no ``.pdf`` name."""
    p = Path(path)
    if p.suffix.lower() == ".pdf":
        return True
    try:
        with p.open("rb") as fh:
            return fh.read(5) == b"%PDF-"
    except OSError:
        return False


def expand_inputs(paths: Iterable[str | Path], left_out: list[Path] | None = None) -> list[Path]:
    """The files named, with each folder replaced by the image and PDF files under it (sorted by path). Images
    htrlab wrote itself into such a folder (lines drawn by ``--show``, pages saved beside their XML, sample grids;
    :func:`~htrlab.data.images.htrlab_output`) are left out, and appended to ``left_out`` when given; a file
    named on its own is always kept.

    Raises:
        DataError: for a folder that holds no image or PDF file.
    """
    from htrlab.data.images import htrlab_output

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            files.append(p)  # a missing file is reported when it is read, by name, with the others kept
            continue
        found = sorted(
            f
            for f in p.rglob("*")
            if f.is_file()
            and f.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in f.relative_to(p).parts)
        )
        if not found:
            raise DataError(
                f"folder {p} holds no image or PDF files (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        ours = [f for f in found if f.suffix.lower() != ".pdf" and htrlab_output(f)]
        if left_out is not None:
            left_out += ours
        files += [f for f in found if f not in set(ours)]
    return files


def page_count(path: str | Path) -> int:
    """How many pages ``path`` holds: a PDF's pages, a TIFF's frames, 1 for any other image.

    Raises:
        DataError: naming the file, when it is missing or cannot be opened as a PDF / image.
    """
    p = Path(path)
    check_file(p)
    if is_pdf(p):
        pdf = _open_pdf(p)
        try:
            return len(pdf)
        finally:
            pdf.close()
    from PIL import UnidentifiedImageError

    from htrlab.data.images import open_image

    try:
        with open_image(p) as im:
            # only TIFF pages are pages: a GIF's or WebP's frames are an animation, an MPO's a stereo pair
            return int(getattr(im, "n_frames", 1)) if im.format == "TIFF" else 1
    except UnidentifiedImageError as exc:
        raise DataError(f"cannot read image {p}: not an image or an unsupported format") from exc
    except Exception as exc:  # any error of Pillow's decoders on a damaged file (see images._read_image)
        raise DataError(f"cannot read image {p}: {exc or type(exc).__name__}") from exc


def check_file(p: Path) -> None:
    """Raise :class:`DataError` naming ``p`` unless it is a non-empty regular file (a missing file, a folder, a
    link that leads nowhere or round in a loop, a device or pipe that would block a read are all named)."""
    if p.is_symlink() and not p.exists():
        raise DataError(
            f"cannot read {p}: a symbolic link that leads nowhere (a loop, or its target is gone)"
        )
    if not p.exists():
        raise DataError(f"image file not found: {p}")
    if not p.is_file():
        raise DataError(f"cannot read {p}: not a regular file")
    if p.stat().st_size == 0:
        raise DataError(f"cannot read image {p}: the file is empty (0 bytes)")


def page_sources(path: str | Path) -> list[PageSource]:
    """The pages of one file; a single-page image (or single-page TIFF) is one source without a page number,
    a PDF's pages are always numbered (a PDF page has no image file of its own)."""
    p = Path(path)
    n = page_count(p)
    if n == 0:
        raise DataError(f"{p} holds no pages")
    if n == 1 and not is_pdf(p):
        return [PageSource(p)]
    return [PageSource(p, k) for k in range(1, n + 1)]


def _open_pdf(path: Path):  # type: ignore[no-untyped-def]
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:  # a core dependency; kept clear for environments installed without it
        raise DataError(f"cannot read {path}: reading PDFs needs pypdfium2 (pip install pypdfium2)") from exc
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise DataError(f"cannot read PDF {path}: {exc}") from exc


def scan_dpi(page) -> float | None:  # type: ignore[no-untyped-def]
    """The resolution of the scan a PDF page is made of: one image covering at least ``SCAN_COVER`` of the page,
    its pixels per inch within [``MIN_SCAN_DPI``, ``MAX_SCAN_DPI``]; ``None`` for any other page."""
    import pypdfium2 as pdfium

    page_w, page_h = page.get_size()
    if page_w <= 0 or page_h <= 0:
        return None
    images = list(page.get_objects(filter=(pdfium.raw.FPDF_PAGEOBJ_IMAGE,), max_depth=2))
    if len(images) != 1:
        return None
    left, bottom, right, top = images[0].get_bounds()
    w_pt, h_pt = right - left, top - bottom
    if w_pt * h_pt < SCAN_COVER * page_w * page_h:
        return None
    w_px, h_px = images[0].get_px_size()
    dpi = 72.0 * math.sqrt(w_px * h_px / (w_pt * h_pt))  # rotation-proof: areas, not widths
    return dpi if MIN_SCAN_DPI <= dpi <= MAX_SCAN_DPI else None


def render_pdf_page(path: str | Path, page: int, dpi: float | None, max_pixels: int) -> np.ndarray:
    """Page ``page`` (1-based) of the PDF ``path`` as a uint8 grayscale array, at ``dpi`` (``None``: the scan's
    own resolution, else ``PDF_DPI``).

    Raises:
        DataError: naming the file and page, when the PDF cannot be read or the page does not exist. A page
        that would exceed ``max_pixels`` is rendered at the resolution that fits, with an ``ImageReduced``
        warning.
    """
    p = Path(path)
    pdf = _open_pdf(p)
    try:
        if not 1 <= page <= len(pdf):
            raise DataError(f"{p} has {len(pdf)} pages: there is no page {page}")
        pg = pdf[page - 1]
        try:
            resolution = dpi or scan_dpi(pg) or PDF_DPI
            w_pt, h_pt = pg.get_size()
            w, h = round(w_pt * resolution / 72), round(h_pt * resolution / 72)
            if not (math.isfinite(w_pt) and math.isfinite(h_pt) and w_pt > 0 and h_pt > 0):
                raise DataError(f"{p}#page={page}: the page has no usable size ({w_pt} x {h_pt} pt)")
            if w * h > max_pixels:  # rendered at the resolution that fits, with a note
                wanted = resolution
                resolution *= math.sqrt(max_pixels / (w * h)) * 0.999
                w, h = round(w_pt * resolution / 72), round(h_pt * resolution / 72)
                if min(w, h) < 1:
                    raise DataError(
                        f"{p}#page={page}: a {w_pt:.0f} x {h_pt:.0f} pt page is too large to render"
                    )
                warnings.warn(
                    f"{p}#page={page}: {wanted:.0f} dpi would give over {max_pixels:,} pixels; rendered at "
                    f"{resolution:.0f} dpi ({w}x{h})",
                    ImageReduced,
                    stacklevel=3,
                )
            bitmap = pg.render(scale=resolution / 72, grayscale=True)
            gray = np.array(bitmap.to_numpy(), dtype=np.uint8)
        finally:
            pg.close()
    except DataError:
        raise
    except Exception as exc:  # PDFium raises its own error types (and RuntimeError) for broken pages
        raise DataError(f"cannot render {p}#page={page}: {exc}") from exc
    finally:
        pdf.close()
    if gray.ndim == 3:
        gray = gray[..., 0]
    return gray


def input_pages(paths: list[Path], on_error: str) -> tuple[list[PageSource], dict[PageSource, str]]:
    """The pages to read from the inputs given (images, folders of them, multi-page TIFFs, PDFs), in order, and
    the inputs that could not be opened (under ``--on-error skip``; else the first such raises ``DataError``)."""
    sources: list[PageSource] = []
    failed: dict[PageSource, str] = {}
    files: list[Path] = []
    ours: list[Path] = []
    for p in paths:
        try:
            files += expand_inputs([p], ours)
        except DataError as exc:
            if on_error == "error":
                raise
            sources.append(PageSource(p))
            failed[sources[-1]] = str(exc)
    seen: set[Path] = set()
    for f in files:
        try:
            key = f.resolve()
        except (OSError, RuntimeError):  # a symbolic link loop (RuntimeError before Python 3.13)
            key = f.absolute()
        if key in seen:  # named twice (a folder and a file in it, say): read once
            continue
        seen.add(key)
        try:
            sources += page_sources(f)
        except DataError as exc:
            if on_error == "error":
                raise
            sources.append(PageSource(f))
            failed[sources[-1]] = str(exc)
    if ours:
        print(
            f"note: left out {len(ours)} image(s) htrlab wrote itself in the folders given (lines drawn by "
            f"--show, pages saved beside their XML, sample grids), e.g. {ours[0]}; name a file to read it",
            file=sys.stderr,
        )
    return sources, failed
