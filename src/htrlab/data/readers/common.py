"""What readers share: the error policy and XML parsing with clear messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from htrlab.errors import ConfigError, DataError

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


def local(tag: object) -> str:
    """Tag name without its namespace."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""
