"""The Bentham (ICFHR 2014 HTRtS) layout: ``Images/Lines/*.png``, ``Transcriptions/*.txt``, ``Partitions/*.lst``."""

from __future__ import annotations

from pathlib import Path

from htrlab.data.readers.common import IMAGE_SUFFIXES, Problems, read_transcription
from htrlab.data.sample import LineSample
from htrlab.errors import DataError


def _split_name(stem: str) -> str:
    s = stem.lower()
    if s.startswith("train"):
        return "train"
    if s.startswith("valid") or s.startswith("val"):
        return "val"
    if s.startswith("test"):
        return "test"
    return s


def read_bentham(root: str | Path, problems: Problems | None = None) -> list[LineSample]:
    """Read Bentham line images with their transcriptions and partitions.

    A line id ``116_649_001_01_02`` belongs to document ``116_649_001`` (its page): splits never cut a page.

    Raises:
        DataError: when the layout's folders are missing.
    """
    root = Path(root)
    problems = problems if problems is not None else Problems()
    img_dir = root / "Images" / "Lines"
    txt_dir = root / "Transcriptions"
    if not img_dir.is_dir() or not txt_dir.is_dir():
        raise DataError(f"{root}: not a Bentham root (needs Images/Lines/ and Transcriptions/)")
    split_of: dict[str, str] = {}
    part_dir = root / "Partitions"
    if part_dir.is_dir():
        for lst in sorted(part_dir.glob("*.lst")):
            for lid in lst.read_text(encoding="utf-8").split():
                split_of[lid] = _split_name(lst.stem)
    samples: list[LineSample] = []
    for img in sorted(img_dir.iterdir()):
        if img.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        lid = img.stem
        try:
            text = read_transcription(txt_dir / f"{lid}.txt")
        except DataError as exc:
            problems.report(f"Bentham line {lid}: {exc}")
            continue
        parts = lid.split("_")
        doc = "_".join(parts[:-2]) if len(parts) > 2 else lid
        samples.append(LineSample(id=lid, text=text, image_path=img, doc_id=doc, split=split_of.get(lid)))
    return samples
