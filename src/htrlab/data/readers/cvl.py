"""The CVL database layout: ``{trainset,testset}/lines/<writer>/<writer>-<text>-<line>*.tif`` and
``{trainset,testset}/xml/<writer>-<text>_attributes.xml`` (PAGE 2010 with ``AttrRegion`` elements).

CVL mixes one German text with English ones; ``language="en"`` keeps English lines only (see
:func:`is_english`). Line transcriptions are the words of the line regions (``attrType="2"`` regions holding
``attrType="3"`` word regions with a ``text`` attribute), in document order.
"""

from __future__ import annotations

import re
from pathlib import Path

from htrlab.data.readers.common import Problems, local, parse_xml
from htrlab.data.sample import LineSample
from htrlab.errors import DataError
from htrlab.text.normalize import normalize_text

_EN = {
    "the",
    "and",
    "of",
    "to",
    "a",
    "in",
    "is",
    "that",
    "it",
    "was",
    "for",
    "with",
    "he",
    "as",
    "his",
    "on",
    "be",
    "at",
    "by",
    "i",
    "this",
    "had",
    "not",
    "are",
    "but",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "you",
    "were",
    "her",
    "she",
    "there",
    "would",
    "their",
    "we",
    "him",
    "been",
    "has",
    "when",
    "who",
    "will",
}
_DE = {
    "der",
    "die",
    "und",
    "in",
    "den",
    "von",
    "zu",
    "das",
    "mit",
    "sich",
    "des",
    "auf",
    "für",
    "ist",
    "im",
    "dem",
    "nicht",
    "ein",
    "eine",
    "als",
    "auch",
    "es",
    "an",
    "er",
    "hat",
    "aus",
    "bei",
    "sie",
    "nach",
    "wird",
    "wie",
    "einem",
    "über",
    "einen",
    "so",
    "zum",
    "war",
    "haben",
    "nur",
    "oder",
    "aber",
    "vor",
}
_WORD = re.compile(r"[^\W\d_]+")


def is_english(text: str) -> bool:
    """Stop-word vote between English and German; umlauts/ß count for German. Ties keep the text."""
    words = [w.lower() for w in _WORD.findall(text)]
    en = sum(w in _EN for w in words)
    de = sum(w in _DE for w in words) + 2 * sum(c in "äöüÄÖÜß" for c in text)
    return en >= de


def _read_xml_lines(xml: Path) -> list[str]:
    root = parse_xml(xml)
    lines: list[str] = []
    for el in root.iter():
        if local(el.tag) == "AttrRegion" and el.get("attrType") == "2":
            words = [
                w.get("text", "")
                for w in el.iter()
                if local(w.tag) == "AttrRegion" and w.get("attrType") == "3" and w.get("text")
            ]
            lines.append(normalize_text(" ".join(words)))
    return lines


def read_cvl(
    root: str | Path, problems: Problems | None = None, language: str | None = "en"
) -> list[LineSample]:
    """Read CVL lines from ``trainset``/``testset`` under ``root``.

    Args:
        root: the CVL root (holding ``trainset/`` and/or ``testset/``).
        problems: error policy (missing XML, line index beyond the XML's lines).
        language: ``"en"`` keeps English lines only; ``None`` keeps all.

    Raises:
        DataError: when neither ``trainset/`` nor ``testset/`` exists.
    """
    root = Path(root)
    problems = problems if problems is not None else Problems()
    sets = [
        (d, "train" if d == "trainset" else "test") for d in ("trainset", "testset") if (root / d).is_dir()
    ]
    if not sets:
        raise DataError(f"{root}: not a CVL root (needs trainset/ or testset/)")
    samples: list[LineSample] = []
    for folder, split in sets:
        xml_cache: dict[str, list[str]] = {}
        for img in sorted((root / folder / "lines").rglob("*")):
            if img.suffix.lower() not in (".tif", ".tiff", ".png", ".jpg"):
                continue
            parts = img.stem.split("-")
            if len(parts) < 3 or not parts[2].isdigit():
                problems.report(f"CVL image {img}: name is not <writer>-<text>-<line>")
                continue
            writer, text_id, line_no = parts[0], parts[1], int(parts[2])
            key = f"{writer}-{text_id}"
            if key not in xml_cache:
                xml = root / folder / "xml" / f"{key}_attributes.xml"
                if not xml.is_file():
                    problems.report(f"CVL image {img}: transcription file {xml} not found")
                    xml_cache[key] = []
                    continue
                xml_cache[key] = _read_xml_lines(xml)
            lines = xml_cache[key]
            if line_no >= len(lines):
                if lines:
                    problems.report(f"CVL image {img}: line {line_no} not in its XML ({len(lines)} lines)")
                continue
            text = lines[line_no]
            if language == "en" and not is_english(text):
                continue
            samples.append(
                LineSample(id=img.stem, text=text, image_path=img, doc_id=key, writer_id=writer, split=split)
            )
    return samples
