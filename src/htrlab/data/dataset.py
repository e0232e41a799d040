"""Opening a dataset by path (format detected or given as ``FORMAT:PATH``) and its splits."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from htrlab.data.linecrop import crop_style
from htrlab.data.readers import (
    Problems,
    read_alto_file,
    read_bentham,
    read_cvl,
    read_folder,
    read_iam,
    read_page_file,
    read_tsv,
)
from htrlab.data.readers.common import local, parse_xml
from htrlab.data.sample import LineSample
from htrlab.errors import DataError

FORMATS = ("page", "alto", "iam", "bentham", "cvl", "folder", "tsv", "pack")


@dataclass
class Dataset:
    """A list of line samples with their splits.

    Attributes:
        name: a short name (the folder name).
        format: the reader used (one of :data:`FORMATS`).
        root: the path it was read from.
        samples: every line, in reading order.
        skipped: messages for items skipped under ``on_error="skip"``.
    """

    name: str
    format: str
    root: Path
    samples: list[LineSample]
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        dupes = [i for i, c in Counter(s.id for s in self.samples).items() if c > 1]
        if dupes:
            raise DataError(f"{self.root}: duplicate sample ids {dupes[:5]!r} ({len(dupes)} in all)")

    @property
    def splits(self) -> list[str]:
        """Split names present, in a stable order (train, val, test first)."""
        names = {s.split for s in self.samples if s.split}
        first = [n for n in ("train", "val", "test") if n in names]
        return first + sorted(names - set(first))

    def split(self, *names: str) -> list[LineSample]:
        """Samples of the given split(s); raises :class:`DataError` if a split is unknown."""
        have = set(self.splits)
        for n in names:
            if n not in have:
                raise DataError(
                    f"dataset {self.root} has no split '{n}' (splits: {', '.join(self.splits) or 'none'})"
                )
        return [s for s in self.samples if s.split in names]


def _group_split(key: str, seed: int, fractions: tuple[float, float]) -> str:
    """Deterministic split of a group (document/writer) by a hash of its name."""
    h = int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < fractions[0]:
        return "val"
    if h < fractions[0] + fractions[1]:
        return "test"
    return "train"


def assign_splits(
    samples: list[LineSample], by: str = "doc", seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1)
) -> None:
    """Give samples without a split one, by document (``by="doc"``) or writer (``by="writer"``), never by line.

    ``fractions`` are the val and test shares of the groups; the rest is train.
    """
    for s in samples:
        if s.split is None:
            group = s.writer_id if by == "writer" and s.writer_id else s.doc_id
            s.split = _group_split(group, seed, fractions)


def _read_splits_tsv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = row.strip().split("\t")
        if not row.strip() or (n == 1 and parts[0] in ("page", "doc", "document")):
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected page<TAB>split, got {row!r}")
        out[parts[0]] = parts[1]
    return out


def _xml_kind(path: Path) -> str:
    root = parse_xml(path)
    name = local(root.tag)
    if name == "PcGts":
        return "page"
    if name == "alto":
        return "alto"
    raise DataError(f"{path}: neither PAGE-XML nor ALTO (root element <{name}>)")


def detect_format(path: Path) -> str:
    """Guess a dataset's layout from what is on disk."""
    if path.is_file():
        if path.suffix.lower() == ".htrpack":
            return "pack"
        if path.suffix.lower() in (".tsv", ".txt", ".csv"):
            return "tsv"
        if path.suffix.lower() == ".xml":
            return _xml_kind(path)
        raise DataError(
            f"{path}: cannot tell the dataset format of this file (expected .xml, .tsv or .htrpack)"
        )
    if not path.is_dir():
        raise DataError(f"dataset path {path} does not exist")
    if (path / "lines.txt").is_file() or (path / "ascii" / "lines.txt").is_file():
        return "iam"
    if (path / "Images" / "Lines").is_dir() and (path / "Transcriptions").is_dir():
        return "bentham"
    if (path / "trainset").is_dir() or (path / "testset").is_dir():
        return "cvl"
    xml_dir = path / "pages" if (path / "pages").is_dir() else path
    xmls = sorted(xml_dir.glob("*.xml"))
    if not xmls and (path / "page").is_dir():
        xmls = sorted((path / "page").glob("*.xml"))
    # decided by the first files that parse: one broken file does not refuse the dataset (it is reported by
    # name when the pages are read)
    errors = []
    for xml in xmls:
        try:
            return _xml_kind(xml)
        except DataError as exc:
            errors.append(str(exc))
            if len(errors) >= 100:
                break
    if errors:
        raise DataError(
            f"{path}: no PAGE-XML or ALTO file among the first {len(errors)} XML files; {errors[0]}"
        )
    return "folder"


def open_dataset(
    spec: str | Path,
    on_error: str = "error",
    split_by: str = "doc",
    seed: int = 0,
    iam_protocol: str = "aachen",
    language: str | None = "en",
    line_crop: str = "band",
) -> Dataset:
    """Open a dataset: ``PATH`` (format detected) or ``FORMAT:PATH`` (one of :data:`FORMATS`).

    Splits come from the data where it has them (``splits.tsv`` beside PAGE/ALTO pages, IAM lists, Bentham
    partitions, CVL train/test sets, ``train/``/``val/``/``test/`` folders, a TSV split column); lines without one
    are split by document (or writer) with a fixed hash, never line by line.

    ``line_crop`` says how lines of page formats (PAGE-XML, ALTO) are cut from their pages: ``"band"``
    (around the baseline, straightened; lines without a baseline fall back to their outline), ``"outline"``
    (the rest masked), ``"box"`` (the outline's box) or ``"ink"`` (a tight box of the line's ink); see
    :func:`htrlab.data.linecrop.cut_line`.

    Raises:
        DataError: the path does not exist, the format is unknown or the data is malformed.
        ConfigError: an unknown ``line_crop``.
    """
    line_crop = crop_style(line_crop)
    text = str(spec)
    fmt: str | None = None
    if ":" in text and text.split(":", 1)[0] in FORMATS:
        fmt, text = text.split(":", 1)
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist")
    fmt = fmt or detect_format(path)
    problems = Problems(on_error)
    samples: list[LineSample]
    if fmt in ("page", "alto"):
        reader = read_page_file if fmt == "page" else read_alto_file
        root = None if path.is_file() else path  # page images must lie inside it
        if path.is_file():
            files, split_of = [path], {}
        else:
            xml_dir = path / "pages" if (path / "pages").is_dir() else path
            if not any(xml_dir.glob("*.xml")) and (path / "page").is_dir():
                xml_dir = path / "page"
            files = sorted(xml_dir.glob("*.xml"))
            splits_tsv = path / "splits.tsv"
            split_of = _read_splits_tsv(splits_tsv) if splits_tsv.is_file() else {}
        samples = []
        for f in files:
            try:
                samples.extend(reader(f, problems, split=split_of.get(f.stem), dataset_root=root))
            except DataError as exc:
                problems.report(str(exc))
    elif fmt == "iam":
        samples = read_iam(path, problems, protocol=iam_protocol)
    elif fmt == "bentham":
        samples = read_bentham(path, problems)
    elif fmt == "cvl":
        samples = read_cvl(path, problems, language=language)
    elif fmt == "folder":
        samples = read_folder(path, problems)
    elif fmt == "tsv":
        samples = read_tsv(path, problems)
    elif fmt == "pack":
        from htrlab.data.pack import read_pack

        pack = read_pack(path)
        samples = list(pack.samples())
        problems.messages.extend(pack.meta.get("skipped", []))
    else:
        raise DataError(f"unknown dataset format '{fmt}' (known: {', '.join(FORMATS)})")
    for s in samples:
        s.crop = line_crop
    if fmt != "iam":  # IAM lines outside the protocol's lists stay unsplit on purpose
        assign_splits(samples, by=split_by, seed=seed)
    name = path.stem if path.is_file() else path.name
    return Dataset(name=name, format=fmt, root=path, samples=samples, skipped=list(problems.messages))


def load_split_images(
    dataset: str | Path, split: str | None, max_lines: int = 0, line_crop: str = "band"
) -> tuple[list[np.ndarray], list[str]]:
    """Grayscale images and transcriptions of the non-empty lines of a split (all lines when ``split`` is
    ``None``), at most ``max_lines`` (0 = all), page lines cut as ``line_crop`` says (``htrlab.data.linecrop``).
    Unreadable lines are left out (``htrlab data check`` lists them)."""
    ds = open_dataset(dataset, on_error="skip", line_crop=line_crop)
    grays, texts = [], []
    for s in ds.split(split) if split else ds.samples:
        if not s.text:
            continue
        try:
            grays.append(s.load_image())
        except DataError:
            continue
        texts.append(s.text)
        if max_lines and len(texts) >= max_lines:
            break
    if not texts:
        raise DataError(f"no readable, transcribed lines in split '{split}' of {dataset}")
    return grays, texts
