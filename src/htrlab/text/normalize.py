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


def odd_characters(text: str) -> list[str]:
    """Characters that are almost never meant as handwriting transcription and would enter a model's charset
    unseen: control and format characters (bidi overrides such as U+202E, zero-width joiners), private-use and
    unassigned code points, and emoji. Returned in order of appearance, once each."""
    out: list[str] = []
    for c in text:
        cat = unicodedata.category(c)
        emoji = cat == "So" and (0x1F000 <= ord(c) <= 0x1FAFF or 0x2600 <= ord(c) <= 0x27BF)
        if (cat in ("Cc", "Cf", "Co", "Cs", "Cn") or emoji) and c not in out:
            out.append(c)
    return out


def describe_character(c: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a character that may not print, by code point and name."""
    return f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}"


def odd_character_report(items: list[tuple[str, str]], limit: int = 5) -> str | None:
    """One line on the (id, text) pairs whose text holds :func:`odd_characters`, or None when none does."""
    found = [(i, odd_characters(t)) for i, t in items]
    found = [(i, chars) for i, chars in found if chars]
    if not found:
        return None
    chars = sorted({c for _, cs in found for c in cs})
    return (
        f"{len(found)} transcriptions hold control, invisible or emoji characters that will be learned as "
        f"letters ({', '.join(describe_character(c) for c in chars[:limit])}"
        + (", ..." if len(chars) > limit else "")
        + f"); e.g. {', '.join(i for i, _ in found[:limit])}"
    )


# Typographic punctuation -> the ASCII that the Hooker transcriptions (and most of the public-domain books) use
_TYPOGRAPHY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2013": "-"})


def fold_typography(text: str) -> str:
    """Curly quotes to straight ones, an en dash to ``-`` and an em dash to ``--``: text for a language model of
    transcriptions written in ASCII punctuation."""
    return text.translate(_TYPOGRAPHY).replace("\u2014", "--")
