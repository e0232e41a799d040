"""Unicode normalisation applied to every transcription htrlab reads."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFC-normalise, map every whitespace run (tabs, newlines, NBSP) to one space, strip the ends.

    Example:
        >>> normalize_text("Cafe\\u0301  au\\tlait ")
        'Café au lait'
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
