"""What readers share: the error policy and XML parsing with clear messages."""

from __future__ import annotations

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
            raise DataError(message + " (use --on-error skip to skip such samples and count them)")
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
