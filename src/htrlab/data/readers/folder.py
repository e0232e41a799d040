"""Plain layouts: a folder of ``image + .txt`` pairs, and a TSV manifest ``path<TAB>text[<TAB>split[<TAB>doc]]``."""

from __future__ import annotations

import csv
from pathlib import Path

from htrlab.data.readers.common import IMAGE_SUFFIXES, Problems, read_transcription
from htrlab.data.sample import LineSample
from htrlab.errors import DataError
from htrlab.text.normalize import normalize_text


def read_folder(root: str | Path, problems: Problems | None = None) -> list[LineSample]:
    """Every image under ``root`` (recursively) with a same-stem ``.txt`` transcription.

    The document id is the image's folder relative to ``root`` (so lines of one page kept in one folder stay
    together when splits are made); images directly in ``root`` are their own documents. A split is taken from
    a top-level folder named ``train``/``val``/``test`` when present.
    """
    root = Path(root)
    problems = problems if problems is not None else Problems()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    samples: list[LineSample] = []
    for img in sorted(root.rglob("*")):
        if img.suffix.lower() not in IMAGE_SUFFIXES or not img.is_file():
            continue
        rel = img.relative_to(root)
        try:
            text = read_transcription(img.with_suffix(".txt"))
        except DataError as exc:
            problems.report(f"{img}: {exc}")
            continue
        parent = rel.parent.as_posix()
        split = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in ("train", "val", "test") else None
        doc = parent if parent not in (".", "train", "val", "test") else rel.with_suffix("").as_posix()
        samples.append(
            LineSample(id=rel.with_suffix("").as_posix(), text=text, image_path=img, doc_id=doc, split=split)
        )
    if not samples and not problems.messages:
        raise DataError(f"{root}: no image + .txt pairs found")
    return samples


def read_tsv(path: str | Path, problems: Problems | None = None) -> list[LineSample]:
    """A TSV manifest: ``path<TAB>text`` with optional ``split`` and ``doc`` columns; a header row is optional.

    Relative image paths are resolved against the manifest's folder.
    """
    path = Path(path)
    problems = problems if problems is not None else Problems()
    try:
        rows = list(
            csv.reader(path.open(encoding="utf-8", newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
        )
    except OSError as exc:
        raise DataError(f"cannot read manifest {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"manifest {path} is not UTF-8 text ({exc.reason})") from exc
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "text"]:
        rows = rows[1:]
        start = 2
    else:
        start = 1
    samples: list[LineSample] = []
    for n, row in enumerate(rows, start):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2:
            problems.report(f"{path}:{n}: expected path<TAB>text, got {row!r}")
            continue
        img = Path(row[0])
        if not img.is_absolute():
            img = path.parent / img
        if not img.is_file():
            problems.report(f"{path}:{n}: image {img} not found")
            continue
        split = row[2].strip() or None if len(row) > 2 else None
        doc = row[3].strip() if len(row) > 3 and row[3].strip() else img.stem
        samples.append(
            LineSample(
                id=Path(row[0]).with_suffix("").as_posix(),
                text=normalize_text(row[1]),
                image_path=img,
                doc_id=doc,
                split=split,
            )
        )
    return samples
