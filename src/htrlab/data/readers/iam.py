"""The IAM Handwriting Database layout: ``lines.txt``, ``lines/<a01>/<a01-000u>/<id>.png``, split lists."""

from __future__ import annotations

from pathlib import Path

from htrlab.data.readers.common import Problems
from htrlab.data.sample import LineSample
from htrlab.errors import DataError
from htrlab.text.normalize import normalize_text

# Split list names of the two common IAM protocols -> htrlab split names.
SPLIT_NAMES = {"tr": "train", "va": "val", "va1": "val", "va2": "val2", "te": "test"}


def _find(root: Path, *names: str) -> Path | None:
    for n in names:
        if (root / n).is_file():
            return root / n
    return None


def read_iam(
    root: str | Path,
    problems: Problems | None = None,
    protocol: str = "aachen",
    include_err: bool = False,
) -> list[LineSample]:
    """Read IAM lines.

    Args:
        root: the IAM root (holding ``lines.txt`` or ``ascii/lines.txt``, ``lines/``, ``forms.txt``, ``splits/``).
        problems: error policy; lines whose image file is missing are reported there.
        protocol: ``aachen`` or ``original`` (folders under ``splits/``); lines in no list get ``split=None``.
        include_err: keep lines whose segmentation IAM marks ``err``.

    Raises:
        DataError: when ``lines.txt`` is missing or a line of it is malformed.
    """
    root = Path(root)
    problems = problems if problems is not None else Problems()
    lines_txt = _find(root, "lines.txt", "ascii/lines.txt")
    if lines_txt is None:
        raise DataError(f"{root}: no lines.txt (or ascii/lines.txt): not an IAM root")
    writers: dict[str, str] = {}
    forms = _find(root, "forms.txt", "ascii/forms.txt")
    if forms is not None:
        for row in forms.read_text(encoding="utf-8", errors="replace").splitlines():
            if row and not row.startswith("#"):
                parts = row.split()
                if len(parts) >= 2:
                    writers[parts[0]] = parts[1]
    split_of: dict[str, str] = {}
    split_dir = root / "splits" / protocol
    if split_dir.is_dir():
        for lst in sorted(split_dir.glob("*.lst")):
            name = SPLIT_NAMES.get(lst.stem, lst.stem)
            for lid in lst.read_text(encoding="utf-8").split():
                split_of[lid] = name
    elif protocol and (root / "splits").is_dir():
        known = sorted(p.name for p in (root / "splits").iterdir() if p.is_dir())
        raise DataError(f"{root}: no split protocol '{protocol}' under splits/ (found: {known})")
    samples: list[LineSample] = []
    for n, row in enumerate(lines_txt.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not row.strip() or row.startswith("#"):
            continue
        parts = row.split(" ")
        if len(parts) < 9:
            raise DataError(f"{lines_txt}:{n}: malformed IAM line (expected 9 fields): {row[:80]!r}")
        lid, status = parts[0], parts[1]
        if status == "err" and not include_err:
            continue
        text = normalize_text(" ".join(parts[8:]).replace("|", " "))
        id_parts = lid.split("-")
        if len(id_parts) < 3:
            raise DataError(f"{lines_txt}:{n}: malformed IAM line id {lid!r}")
        form = "-".join(id_parts[:2])
        image = root / "lines" / id_parts[0] / form / f"{lid}.png"
        if not image.is_file():
            problems.report(f"IAM line {lid}: image {image} not found")
            continue
        samples.append(
            LineSample(
                id=lid,
                text=text,
                image_path=image,
                doc_id=form,
                writer_id=writers.get(form),
                split=split_of.get(lid),
            )
        )
    return samples
