"""Reading images from Python: :func:`load` a recognizer, then :meth:`Reader.read` images.

    import htrlab
    reader = htrlab.load()                      # the bundled model, its bundled decoder
    page = reader.read("letter.jpg")            # a path, a NumPy array, a PIL image, or a list of them
    print(page.text, page.confidence)

A :class:`Page` holds its lines (text, confidence, box, outline polygon, baseline, in the image's pixels), how it
was read (``mode``: a page of lines, or one line or word) and the quarter turns it needed, and turns into the
JSON ``htrlab recognize --format jsonl`` writes (:meth:`Page.to_dict`) or into PAGE-XML / ALTO
(:meth:`Page.save_xml`). ``htrlab recognize`` reads through the same :meth:`Reader.read_sources`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from htrlab.decoding.config import DecoderConfig
from htrlab.errors import ConfigError, DataError

LAYOUTS = ("auto", "word", "line", "page")
FLUSH_LINES = 512  # lines gathered from several pages are decoded together, then those pages are handed out


@dataclass
class Page:
    """What was read on one image (or one page of a PDF or TIFF).

    Attributes:
        source: where it came from (a path, ``path#page=N``, or ``<array>`` / ``<image>`` with its index).
        path: the file, when there is one.
        page: the page of a multi-page file (1-based), else ``None``.
        mode: ``"page"`` (lines found and read one by one) or ``"line"`` (the image read as one line or word).
        rotation: degrees the image was turned clockwise to be read upright (coordinates stay those of the
            image as given).
        layout: the lines (:class:`htrlab.data.layout.TextLine`: ``text``, ``confidence``, ``box``,
            ``polygon``, ``baseline``) and the page size.
        image: the grayscale image as given (the one the coordinates refer to), or ``None`` when not kept.
        error: why the image could not be read (then there are no lines).
    """

    source: str
    path: Path | None = None
    page: int | None = None
    mode: str = ""
    rotation: int = 0
    layout: Any = None
    image: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def lines(self) -> list[Any]:
        return list(self.layout.lines) if self.layout is not None else []

    @property
    def text(self) -> str:
        """The lines' text, one per row."""
        return "\n".join(ln.text for ln in self.lines)

    @property
    def confidence(self) -> float:
        """The least confident line's confidence (0 for a page without lines)."""
        confs = [ln.confidence for ln in self.lines if ln.confidence is not None]
        return min(confs) if confs else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The page as ``htrlab recognize --format jsonl`` writes it."""
        if self.error is not None:
            return {
                "path": self.source if self.path is None else str(self.path),
                "page": self.page,
                "error": self.error,
            }
        layout = self.layout
        return {
            "path": self.source if self.path is None else str(self.path),
            "page": self.page,
            "layout": self.mode,
            "rotation": self.rotation,
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "width": layout.width,
            "height": layout.height,
            "lines": [
                {
                    "id": ln.id,
                    "text": ln.text,
                    "confidence": round(ln.confidence or 0.0, 4),
                    "box": list(ln.box),
                    "polygon": ln.polygon.tolist(),
                    "baseline": ln.baseline.tolist(),
                }
                for ln in self.lines
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def save_xml(self, target: str | Path, fmt: str = "page-xml") -> Path:
        """Write the page as PAGE-XML (``fmt="page-xml"``) or ALTO (``"alto"``) at ``target``; an image with no
        file of its own (an array, a PDF or TIFF page) is saved beside it as PNG, the image the XML's
        coordinates refer to."""
        from htrlab.data.documents import PageSource
        from htrlab.segment.export import write_layout_file

        if self.error is not None or self.layout is None:
            raise DataError(f"{self.source}: nothing read to write ({self.error})")
        own_file = self.path is not None and PageSource(self.path, self.page).has_image_file
        return write_layout_file(fmt, self.layout, self.image, Path(target), self.path if own_file else None)


@dataclass
class Source:
    """One image to read: a label for messages, where it came from, and how to get its grayscale pixels."""

    label: str
    load: Callable[[], np.ndarray]
    path: Path | None = None
    page: int | None = None

    def __str__(self) -> str:
        return self.label


def _gray_of(image: Any, label: str) -> np.ndarray:
    """A NumPy array (H, W) or (H, W, 3/4), or a PIL image, as uint8 grayscale."""
    from PIL import Image

    from htrlab.data.images import MAX_PIXELS, to_gray

    if isinstance(image, Image.Image):
        return to_gray(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        if arr.dtype != np.uint8:
            raise DataError(f"{label}: colour arrays must be uint8, got {arr.dtype}")
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
        return to_gray(Image.fromarray(arr[..., 0] if mode == "L" else arr, mode))
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(f"{label}: an image array is (H, W) or (H, W, 3|4), got shape {arr.shape}")
    if arr.size > MAX_PIXELS:
        raise DataError(f"{label}: {arr.shape[1]}x{arr.shape[0]} pixels is over htrlab's {MAX_PIXELS:,}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == bool:
        return np.where(arr, 255, 0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1:
        return np.round(arr * 255).astype(np.uint8)  # floats in [0, 1]: white is 1
    raise DataError(f"{label}: an image array is uint8, bool, or floats in [0, 1]; got {arr.dtype}")


def sources_of(images: Any, on_error: str = "error", pdf_dpi: float | None = None) -> list[Source]:
    """The images to read from what a caller gives: a path (an image, a folder of them, a multi-page TIFF or a
    PDF: every page), a NumPy array, a PIL image, or a list of those, in order (a file named twice in a row of
    paths, or in a folder given too, is read once). Under ``on_error="skip"`` a path that cannot be opened is a
    source whose loading raises the reason (read as a :class:`Page` with ``error``)."""
    from PIL import Image

    items = images if isinstance(images, list | tuple) else [images]
    out: list[Source] = []
    paths: list[Path] = []

    def flush_paths() -> None:
        if not paths:
            return
        from htrlab.data.documents import input_pages  # the one place that expands folders, PDFs and TIFFs

        pages, bad = input_pages(list(paths), on_error)
        out.extend(page_sources(pages, bad, pdf_dpi))
        paths.clear()

    for k, item in enumerate(items):
        if isinstance(item, str | Path):
            paths.append(Path(item))
            continue
        flush_paths()
        if isinstance(item, Image.Image):
            out.append(Source(f"<image {k}>", _const(item, f"<image {k}>")))
        elif isinstance(item, np.ndarray):
            out.append(Source(f"<array {k}>", _const(item, f"<array {k}>")))
        else:
            raise ConfigError(
                f"cannot read a {type(item).__name__}: give a path, a NumPy array or a PIL image"
            )
    flush_paths()
    return out


def page_sources(
    pages: Sequence[Any], refused: dict[Any, str] | None = None, pdf_dpi: float | None = None
) -> list[Source]:
    """Sources of pages already listed (:class:`htrlab.data.documents.PageSource`, from ``input_pages``); a page
    in ``refused`` is a source whose loading raises the reason given."""
    from htrlab.data.images import load_gray

    refused = refused or {}
    return [
        Source(
            str(p), _refused(refused[p]) if p in refused else _loader(load_gray, p, pdf_dpi), p.path, p.page
        )
        for p in pages
    ]


def _loader(load_gray: Any, src: Any, dpi: float | None) -> Callable[[], np.ndarray]:
    return lambda: load_gray(src.path, src.page, dpi)


def _const(image: Any, label: str) -> Callable[[], np.ndarray]:
    return lambda: _gray_of(image, label)


def _refused(why: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        raise DataError(why)

    return load


class Reader:
    """A recognizer with its decoder, ready to read images (made by :func:`load`)."""

    def __init__(
        self,
        engine: Any,
        decoder: Any,
        decoder_config: DecoderConfig,
        segment: Any = None,
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        self.engine = engine
        self.decoder = decoder  # None: greedy
        self.decoder_config = decoder_config  # resolved (``auto`` made concrete)
        self.segment = segment  # a SegmentConfig (None: the default segmenter)
        self.batch_size = batch_size
        self.device = device

    @classmethod
    def of(
        cls,
        model: Any,
        decoder: Any = None,
        decoder_config: DecoderConfig | None = None,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> Reader:
        """A Reader for a model already in memory: an engine (:func:`htrlab.read.engines.load_engine`) or a
        loaded checkpoint (:class:`htrlab.models.checkpoint.LoadedModel`, as training and benchmarks hold
        one). Greedy unless ``decoder`` (built from ``decoder_config``) is given."""
        from htrlab.read.engines import Engine, engine_of

        engine = model if isinstance(model, Engine) else engine_of(model)
        if decoder_config is None:
            decoder_config = DecoderConfig(decoder="greedy" if decoder is None else "beam")
        return cls(engine, decoder, decoder_config, batch_size=batch_size, device=device)

    @property
    def charset(self) -> Any:
        return self.engine.charset

    @property
    def preprocess(self) -> Any:
        """How this model's lines are prepared (:class:`htrlab.data.preprocess.PreprocessConfig`)."""
        return self.engine.preprocess

    @property
    def meta(self) -> Any:
        """What the model file says about itself (:class:`htrlab.models.checkpoint.CheckpointMeta`)."""
        return self.engine.meta

    def read(
        self,
        images: Any,
        layout: str = "auto",
        line_crop: str = "auto",
        orientation: str = "auto",
        on_error: str = "error",
        keep_images: bool = False,
    ) -> Page | list[Page]:
        """Read one image (a path, a NumPy array, a PIL image) or a list of them.

        Args:
            layout: ``auto`` finds the lines and reads a page or paragraph when there are several, else the image
                as one line; ``word``/``line``: the image is one line; ``page``: always find lines.
            line_crop: how found lines are cut: ``band``, ``outline``, or ``auto`` (both, the more confident kept).
            orientation: ``auto`` (pages turned upright), or ``0``/``90``/``180``/``270`` degrees clockwise.
            on_error: ``error`` raises on the first image that cannot be read; ``skip`` returns it as a
                :class:`Page` with ``error`` set and reads the rest.
            keep_images: keep each page's grayscale image on it (for drawing or XML of arrays).

        Returns:
            One :class:`Page` for one image (or a one-page file) given; a list for a list, a folder, or a file
            of several pages. A file named twice in a row of paths, or also inside a folder given, is read once.
        """
        sources = sources_of(images, on_error)
        pages = list(self.read_sources(sources, layout, line_crop, orientation, on_error, keep_images))
        folder = isinstance(images, str | Path) and Path(images).is_dir()
        single = not isinstance(images, list | tuple) and not folder and len(pages) == 1
        return pages[0] if single else pages

    def read_lines(self, images: Sequence[Any]) -> list[tuple[str, float]]:
        """Text and confidence of line (or word) images, each read as one line: the fastest path, no layout."""
        from htrlab.data.preprocess import preprocess

        lines = [
            preprocess(_gray_of(im, f"<line {k}>"), self.engine.preprocess) for k, im in enumerate(images)
        ]
        return [(d.text, d.confidence) for d in self.read_prepared(lines)]

    def read_prepared(self, lines: Sequence[np.ndarray], greedy: bool = False) -> list[Any]:
        """Read lines already preprocessed for this model (:attr:`preprocess`; e.g. the cached lines of a
        dataset): one :class:`htrlab.decoding.greedy.Decoded` (``text``, ``confidence``) each, in order, with
        this reader's decoder (greedy: best path)."""
        from htrlab.read.predict import predict

        if not len(lines):
            return []
        decoder = None if greedy else self.decoder
        return predict(self.engine, self.charset, lines, self.batch_size, self.device, decoder=decoder)

    def _cut(
        self,
        src: Source,
        layout: str,
        line_crop: str,
        orientation: str,
        note: Callable[[str], None] | None,
    ) -> tuple[np.ndarray, Any]:
        """Load ``src``, turn it upright and find and cut its lines (``htrlab.segment.orient``); the
        orientation check reads crops greedily with this reader's model (a reader without one takes pages
        as they are unless ``orientation`` names a turn)."""
        from htrlab.data.preprocess import preprocess
        from htrlab.segment.orient import oriented_line_cuts

        gray = src.load()

        def read(crops: list[Any], name: str = str(src)) -> list[Any]:
            lines = [preprocess(c, self.engine.preprocess, f"{name} (orientation)") for c in crops]
            return self.read_prepared(lines, greedy=True)

        reading = read if self.engine is not None else None
        found = oriented_line_cuts(gray, layout, self.segment, str(src), line_crop, orientation, reading)
        if found.quarter_turns and orientation == "auto" and note is not None:
            note(
                f"{src}: read turned {90 * found.quarter_turns} degrees clockwise (--orientation 0 reads it as it is)"
            )
        return gray, found

    def find_lines(
        self,
        sources: Iterable[Source],
        orientation: str = "auto",
        on_error: str = "error",
        progress: Callable[[list[Source]], Iterable[Source]] | None = None,
        note: Callable[[str], None] | None = None,
    ) -> Iterator[Page]:
        """The lines of each page of ``sources``, found and not read (``htrlab segment``): one :class:`Page`
        each (``mode`` ``"page"``; the lines' text empty; the image kept), in order. Under ``on_error="skip"``
        a page that cannot be read is a :class:`Page` with ``error``; under ``"error"`` it raises."""
        for src in progress(list(sources)) if progress else sources:
            page = Page(str(src), src.path, src.page)
            try:
                gray, found = self._cut(src, "page", "outline", orientation, note)
            except DataError as exc:
                if on_error == "error":
                    raise
                yield replace(page, error=str(exc))
                continue
            yield replace(
                page, layout=found.layout, mode=found.mode, rotation=90 * found.quarter_turns, image=gray
            )

    def read_sources(
        self,
        sources: Iterable[Source],
        layout: str = "auto",
        line_crop: str = "auto",
        orientation: str = "auto",
        on_error: str = "error",
        keep_images: bool = False,
        progress: Callable[[list[Source]], Iterable[Source]] | None = None,
        note: Callable[[str], None] | None = None,
    ) -> Iterator[Page]:
        """Read ``sources`` in order, one :class:`Page` each, yielded as they are done.

        Lines of several images share batches: images are read in chunks of about ``FLUSH_LINES`` lines and each
        chunk's pages are handed out before the next is read (memory stays bounded on thousands of pages, and a
        caller keeps what was read if a later image stops the run). Under ``on_error="error"`` the first image
        that cannot be read raises :class:`DataError` after the pages before it are yielded."""
        from htrlab.data.preprocess import preprocess
        from htrlab.segment.read import more_confident

        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        pending: list[Page] = []
        readings: dict[int, list[list[Any]]] = {}  # page (by position in pending) -> way cut -> lines read
        owners: list[tuple[int, int, int]] = []  # (page, way, line) of each line still to decode
        images: list[np.ndarray] = []

        def flush() -> Iterator[Page]:
            for (k, way, i), d in zip(owners, self.read_prepared(images)):
                readings[k][way][i] = d
            for k, page in enumerate(pending):
                if page.error is None:
                    ways = readings.pop(k)
                    for line, d in zip(page.layout.lines, ways[more_confident(ways)]):
                        line.text, line.confidence = d.text, d.confidence
                yield page
            pending.clear()
            readings.clear()
            owners.clear()
            images.clear()

        for src in progress(list(sources)) if progress else sources:
            page = Page(str(src), src.path, src.page)
            try:
                gray, found = self._cut(src, layout, line_crop, orientation, note)
                # the lines the orientation check read greedily are not read again when decoding is greedy too
                known = found.readings if self.decoder is None else {}
                ways = [known.get(way) or [None] * len(cut) for way, cut in enumerate(found.cuts)]
                todo = [
                    (way, i, preprocess(c, self.engine.preprocess, f"{src} line {i + 1}"))
                    for way, cut in enumerate(found.cuts)
                    for i, c in enumerate(cut)
                    if ways[way][i] is None
                ]
            except DataError as exc:
                if on_error == "error":
                    yield from flush()  # the pages before this one are handed out first
                    raise
                pending.append(replace(page, error=str(exc)))
                continue
            page.layout, page.mode, page.rotation = found.layout, found.mode, 90 * found.quarter_turns
            page.image = gray if keep_images else None
            readings[len(pending)] = ways
            owners.extend((len(pending), way, i) for way, i, _ in todo)
            images.extend(line for _, _, line in todo)
            pending.append(page)
            if len(images) >= FLUSH_LINES:
                yield from flush()
        yield from flush()


def load(
    model: str | Path = "default",
    decoder: str | DecoderConfig = "auto",
    lm: str | Path | None = None,
    device: str = "cpu",
    engine: str = "auto",
    threads: int = 0,
    precision: str = "fp32",
    batch_size: int = 16,
    segmenter: str = "classical",
    line_detector: str | None = None,
) -> Reader:
    """A :class:`Reader` for ``model``: ``"default"`` (the bundled model), a checkpoint (``.safetensors``) or
    an ONNX export (``.onnx``).

    Args:
        decoder: a decoder name (``auto``: for the bundled model its beam search with the bundled character LM,
            else greedy, or ``beam+lm`` when ``lm`` is given; ``greedy``; ``beam``; ``beam+lm``; ...) or a
            :class:`htrlab.decoding.config.DecoderConfig` with every setting.
        lm: a character n-gram LM (ARPA, from ``htrlab lm build``) for the beam search.
        device: where a PyTorch model runs (``cpu``, ``cuda``, ``cuda:1``); ONNX models run on the CPU.
        engine: ``auto`` (ONNX for ``.onnx`` files, PyTorch otherwise), ``torch``, ``onnx`` or ``openvino``.
        threads: CPU threads (0: the library's default).
        precision: ``fp32`` or ``bf16`` (PyTorch and OpenVINO).
        batch_size: lines per forward pass.
        segmenter: how lines are found on pages: ``classical`` or ``learned`` (with ``line_detector``).
    """
    from htrlab.decoding.config import make_decoder, resolve
    from htrlab.read.engines import load_engine
    from htrlab.segment.lines import SegmentConfig

    cfg = decoder if isinstance(decoder, DecoderConfig) else DecoderConfig(decoder=decoder)
    given: set[str] = set()
    if lm is not None:
        cfg = replace(cfg, lm=str(lm))
        given.add("lm")
    if isinstance(decoder, DecoderConfig):  # every setting of a config given is the caller's choice
        given |= set(DecoderConfig.names())
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    eng = load_engine(model, engine, threads, precision)
    if device != "cpu":
        if eng.module is None or eng.name != "torch":
            raise ConfigError(
                f"device {device!r} needs a PyTorch model (engine='torch'); ONNX runs on the CPU"
            )
        eng.module.to(device)
    resolved = resolve(cfg, model, given)
    dec = make_decoder(resolved, eng.charset, model, given)
    if segmenter == "learned":
        from htrlab.segment.learned import load_detector

        load_detector(line_detector)
    seg = SegmentConfig(method=segmenter, detector=line_detector)
    return Reader(eng, dec, resolved, seg, batch_size, device)


__all__ = ["DecoderConfig", "Page", "Reader", "Source", "load", "page_sources", "sources_of"]
