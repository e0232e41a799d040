"""What readers share: the error policy and XML parsing with clear messages."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from htrlab.data.linecrop import line_spacing
from htrlab.data.sample import LineSample
from htrlab.errors import ConfigError, DataError
from htrlab.text.normalize import normalize_text

ON_ERROR = ("error", "skip")


@dataclass
class Problems:
    """Collects bad items under ``on_error="skip"``; raises at once under ``on_error="error"``."""

    on_error: str = "error"
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")

    def report(self, message: str) -> None:
        if self.on_error == "error":
            hint = " (use --on-error skip to skip such samples and count them)"
            raise DataError(message if message.endswith(hint) else message + hint)
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)


def parse_xml(path: Path) -> etree._Element:
    """Parse an XML file; raises :class:`DataError` naming the file, line and problem."""
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        return etree.parse(str(path), parser).getroot()
    except OSError as exc:
        raise DataError(f"cannot read XML file {path}: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise DataError(f"malformed XML in {path}: {exc}") from exc


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def read_transcription(path: Path) -> str:
    """A line's transcription file, NFC-normalised.

    Raises:
        DataError: naming the file when it is missing or not UTF-8 text.
    """
    if not path.is_file():
        raise DataError(f"transcription {path} not found")
    try:
        return normalize_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason})") from exc


def local(tag: object) -> str:
    """Tag name without its namespace."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def set_line_spacing(samples: list[LineSample]) -> None:
    """Give the lines of one page the page's line spacing (from their baselines), so that they can be cut as
    baseline bands; lines of a page with a single baseline keep ``None`` (and are cut by their outline)."""
    spacing = line_spacing([s.baseline for s in samples])
    for s in samples:
        s.line_spacing = spacing


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside ``root``, judged on the names alone (``..`` folded, links not followed)."""
    p, r = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def page_image(xml_path: Path, name: str, root: Path | None, fallbacks: Sequence[Path] = ()) -> Path:
    """The page image an XML file names, found inside the dataset folder ``root`` only (default: the folder
    above the XML's, where datasets keep images beside a ``pages/`` folder): the name as given, relative to the XML, then the bare file name beside the XML and one folder up,
    then ``fallbacks``. A file's text never opens a file elsewhere (``../../etc/passwd``, ``/home/...``).

    Raises:
        DataError: naming the XML file and the path, when the image is missing or lies outside ``root``.
    """
    root = root if root is not None else xml_path.parent.parent
    candidates = []
    if name:
        bare = Path(name.replace("\\", "/")).name
        candidates = [xml_path.parent / name, xml_path.parent / bare, xml_path.parent.parent / bare]
    candidates += list(fallbacks)
    inside = [c for c in candidates if _inside(c, root)]
    found = next((c for c in inside if c.is_file()), None)
    if found is not None:
        return found
    if name and not _inside(xml_path.parent / name, root):
        raise DataError(
            f"{xml_path}: page image path {name[:200]!r} leads outside the dataset folder {root}; refused"
        )
    raise DataError(
        f"{xml_path}: page image {name[:200] or '(none named)'} not found (looked in {xml_path.parent})"
    )
