"""Preprocessed lines kept in memory and cached on disk, so pages are cropped and normalised once per run
configuration rather than once per epoch."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from htrlab.data.preprocess import PreprocessConfig, preprocess, to_uint8
from htrlab.data.readers.common import Problems
from htrlab.data.sample import LineSample
from htrlab.errors import ConfigError, DataError

CACHE_VERSION = 4  # bump whenever cropping or preprocessing changes what a line becomes
_PARTIAL = ".tmp.npz"  # suffix of a cache file still being written (renamed into place when complete)


def fingerprint(gray: np.ndarray) -> str:
    """A content hash of a raw line image (independent of preprocessing), used to detect train/test overlap."""
    h = hashlib.sha1(f"{gray.shape}".encode())
    h.update(np.ascontiguousarray(gray).tobytes())
    return h.hexdigest()[:16]


def line_key(sample_id: str, text: str) -> str:
    """A hash of a line's id and transcription: recognises a training line again however its image is cut
    (a change of line crop changes every :func:`fingerprint` but no key)."""
    return hashlib.sha1(f"{sample_id}\t{text}".encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get("HTRLAB_CACHE", Path.home() / ".cache" / "htrlab"))


@dataclass
class PreparedLines:
    """Preprocessed lines: uint8 images (height, W_i), texts, ids, raw-image fingerprints."""

    ids: list[str]
    texts: list[str]
    images: list[np.ndarray]
    fingerprints: list[str]
    doc_ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def widths(self) -> np.ndarray:
        return np.array([im.shape[1] for im in self.images], dtype=np.int64)

    def concat(self, other: PreparedLines) -> PreparedLines:
        """These lines followed by ``other``'s (ids must stay unique)."""
        clash = set(self.ids) & set(other.ids)
        if clash:
            raise DataError(f"the same line id in two training sets: {sorted(clash)[:3]}")
        return PreparedLines(
            self.ids + other.ids,
            self.texts + other.texts,
            self.images + other.images,
            self.fingerprints + other.fingerprints,
            (self.doc_ids or [""] * len(self)) + (other.doc_ids or [""] * len(other)),
            self.skipped + other.skipped,
        )

    def subset(self, keep: Sequence[int]) -> PreparedLines:
        return PreparedLines(
            ids=[self.ids[i] for i in keep],
            texts=[self.texts[i] for i in keep],
            images=[self.images[i] for i in keep],
            fingerprints=[self.fingerprints[i] for i in keep],
            doc_ids=[self.doc_ids[i] for i in keep] if self.doc_ids else [],
            skipped=list(self.skipped),
        )


def _file_digest(path: Path) -> str:
    """A hash of a file's bytes ("missing" when it cannot be read: reading the line will report that)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return "missing"
    return h.hexdigest()


def _cache_key(samples: Sequence[LineSample], cfg: PreprocessConfig) -> str:
    # The images enter the key by their bytes, not by path and modification time: a dataset copied, moved,
    # checked out again or re-mounted (all of which change mtimes) keeps its cache, and an image edited in
    # place, even to the same size, gets a new one. Each file is read once (pages hold many lines); hashing
    # costs a fraction of a second per 100 MB, far less than cropping and normalising the lines again.
    h = hashlib.sha1(json.dumps({"v": CACHE_VERSION, "cfg": asdict(cfg)}, sort_keys=True).encode())
    digests: dict[Path, str] = {}
    for s in samples:
        digest = digests.get(s.image_path)
        if digest is None:
            digest = digests[s.image_path] = _file_digest(s.image_path)
        poly = s.polygon.tobytes() if s.polygon is not None else b""
        base = s.baseline.tobytes() if s.baseline is not None else b""
        h.update(f"{s.id}\t{s.text}\t{digest}\t{s.box}\t{s.crop}\t{s.variant}\t{s.line_spacing}".encode())
        h.update(poly)
        h.update(base)
    return h.hexdigest()[:20]


def cache_limit_bytes() -> int:
    """The most the preprocessed-line cache may hold: ``$HTRLAB_CACHE_MAX_GB`` (default 10; 0 = no limit)."""
    raw = os.environ.get("HTRLAB_CACHE_MAX_GB", "10")
    try:
        gb = float(raw)
    except ValueError:
        raise ConfigError(f"HTRLAB_CACHE_MAX_GB must be a number of GB, not {raw!r}") from None
    if gb < 0:
        raise ConfigError(f"HTRLAB_CACHE_MAX_GB must be >= 0, not {raw!r}")
    return int(gb * 1e9)


def _evict(cache_dir: Path, keep: Path, limit: int) -> None:
    """Remove the least recently used cache files until the cache holds at most ``limit`` bytes.

    Every configuration (height, crop, dataset) has its own file, hundreds of MB for a few thousand lines; left
    alone the cache would grow with every experiment. A file is "used" when written or read (reads touch it).
    The file just written is never removed, however large.
    """
    if limit <= 0:
        return
    files = []
    for f in cache_dir.glob("lines-*.npz"):
        if f.name.endswith(_PARTIAL):  # being written by another process
            continue
        try:
            st = f.stat()
        except OSError:  # removed meanwhile by another process
            continue
        files.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in files)
    removed, freed = 0, 0
    for _, size, f in sorted(files, key=lambda t: t[0]):
        if total <= limit:
            break
        if f == keep:
            continue
        try:
            f.unlink()
        except OSError:
            continue
        total -= size
        removed, freed = removed + 1, freed + size
    if removed:
        print(
            f"cache: removed {removed} least recently used preprocessed-line file(s), {freed / 1e9:.2f} GB, "
            f"to keep {cache_dir} under HTRLAB_CACHE_MAX_GB={limit / 1e9:g}",
            file=sys.stderr,
        )


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        tqdm.write(message, file=sys.stderr)


def _save(path: Path, lines: PreparedLines) -> None:
    widths = lines.widths
    flat = np.concatenate([im.reshape(-1) for im in lines.images]) if lines.images else np.zeros(0, np.uint8)
    meta = {
        "ids": lines.ids,
        "texts": lines.texts,
        "fingerprints": lines.fingerprints,
        "doc_ids": lines.doc_ids,
        "skipped": lines.skipped,
    }
    tmp = path.with_suffix(_PARTIAL)
    np.savez(
        tmp,
        flat=flat,
        widths=widths,
        height=np.array(lines.images[0].shape[0] if lines.images else 0),
        meta=np.array(json.dumps(meta)),
    )
    tmp.replace(path)


def _load(path: Path) -> PreparedLines:
    with np.load(path) as z:
        flat, widths, height = z["flat"], z["widths"], int(z["height"])
        meta = json.loads(str(z["meta"]))
    images, off = [], 0
    for w in widths:
        n = int(w) * height
        images.append(flat[off : off + n].reshape(height, int(w)))
        off += n
    return PreparedLines(
        meta["ids"], meta["texts"], images, meta["fingerprints"], meta["doc_ids"], meta["skipped"]
    )


def prepare_lines(
    samples: Sequence[LineSample],
    cfg: PreprocessConfig,
    on_error: str = "error",
    cache_dir: Path | None = None,
    validate: Callable[[LineSample, np.ndarray], str | None] | None = None,
    progress: bool = True,
    desc: str = "preprocessing",
) -> PreparedLines:
    """Load, crop and preprocess ``samples`` once; reuse a disk cache when the same lines and config recur.

    Args:
        samples: lines to prepare (pages are read once each thanks to a small page cache).
        cfg: preprocessing configuration.
        on_error: ``error`` raises the first :class:`DataError`; ``skip`` records it in ``skipped``.
        cache_dir: where the cache lives (``None``: no disk cache).
        validate: optional check of a prepared image, returning an error message (e.g. too narrow for CTC).
        progress: show a progress bar on stderr.
        desc: progress bar label.
    """
    problems = Problems(on_error)
    if any(hasattr(s, "prepared_for") for s in samples):
        cache_dir = None  # lines from a pack (htrlab.data.pack) are prepared already: no copy of them on disk
    limit = cache_limit_bytes() if cache_dir is not None else 0  # a bad setting fails before the work
    key = _cache_key(samples, cfg)
    cache_file = cache_dir / f"lines-{key}.npz" if cache_dir is not None else None
    if cache_file is not None and cache_file.is_file():
        try:
            lines = _load(cache_file)
        except (OSError, ValueError, KeyError):
            lines = None  # a damaged cache is rebuilt, never trusted
        if lines is not None:
            with contextlib.suppress(OSError):  # a read-only cache still serves
                os.utime(cache_file)  # most recently used: the last to be evicted
            return _validated(lines, samples, validate, on_error)
    ids, texts, images, fps, docs = [], [], [], [], []
    for s in tqdm(samples, desc=desc, disable=not progress, leave=False, unit="line"):
        packed = s.prepared_for(cfg) if hasattr(s, "prepared_for") else None
        if packed is not None:  # a pack made with this preprocessing: its image is the model input
            ids.append(s.id)
            texts.append(s.text)
            images.append(packed)
            fps.append(s.fingerprint)  # type: ignore[attr-defined]
            docs.append(s.doc_id)
            continue
        try:
            gray = s.load_image()
            x = preprocess(gray, cfg, s.id)
        except DataError as exc:
            problems.report(f"sample {s.id}: {exc}")
            continue
        ids.append(s.id)
        texts.append(s.text)
        images.append(to_uint8(x))
        fps.append(fingerprint(gray))
        docs.append(s.doc_id)
    lines = PreparedLines(ids, texts, images, fps, docs, list(problems.messages))
    if cache_file is not None and images:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            _save(cache_file, lines)
            _evict(cache_file.parent, cache_file, limit)
        except OSError as exc:  # the work is done: an unwritable cache costs the next run time, nothing else
            _warn_once(
                f"cache: cannot write preprocessed lines to {cache_file.parent} ({exc.strerror or exc}); "
                "running without a cache (set HTRLAB_CACHE to a writable folder)"
            )
    return _validated(lines, samples, validate, on_error)


def _validated(
    lines: PreparedLines,
    samples: Sequence[LineSample],
    validate: Callable[[LineSample, np.ndarray], str | None] | None,
    on_error: str,
) -> PreparedLines:
    # Problems recorded when the lines were prepared (perhaps by an earlier run, under "skip") are reported
    # again under this run's policy: "error" raises the first of them.
    problems = Problems(on_error)
    for m in lines.skipped:
        problems.report(m)
    if validate is None:
        lines.skipped = list(problems.messages)
        return lines
    by_id = {s.id: s for s in samples}
    keep = []
    for i, (sid, im) in enumerate(zip(lines.ids, lines.images)):
        msg = validate(by_id[sid], im)
        if msg:
            problems.report(msg)
        else:
            keep.append(i)
    out = lines.subset(keep)
    out.skipped = list(problems.messages)
    return out
