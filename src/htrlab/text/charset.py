"""The model character set: an ordered list of symbols, with index 0 reserved for the CTC blank."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from htrlab.errors import CharsetError


class Charset:
    """Maps characters to class indices (1..N); index 0 is the CTC blank.

    Encoding is strict: an unknown character raises :class:`CharsetError` naming it (and the sample id when
    given), unless ``on_unknown="skip"`` drops it explicitly.
    """

    BLANK = 0

    def __init__(self, symbols: Sequence[str]):
        symbols = list(symbols)
        if len(set(symbols)) != len(symbols):
            dupes = sorted(s for s, c in Counter(symbols).items() if c > 1)
            raise CharsetError(f"charset has duplicate symbols: {dupes!r}")
        for s in symbols:
            if len(s) != 1:
                raise CharsetError(f"charset symbols must be single characters, got {s!r}")
        self.symbols: list[str] = symbols
        self._index = {s: i + 1 for i, s in enumerate(symbols)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Charset:
        """Build a sorted charset from training transcriptions."""
        chars: set[str] = set()
        for t in texts:
            chars.update(t)
        return cls(sorted(chars))

    def __len__(self) -> int:
        """Number of output classes, blank included."""
        return len(self.symbols) + 1

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and other.symbols == self.symbols

    def __repr__(self) -> str:
        return f"Charset({''.join(self.symbols)!r})"

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` not in the charset, sorted, each once."""
        return sorted({c for c in text if c not in self._index})

    def encode(self, text: str, sample_id: str | None = None, on_unknown: str = "error") -> list[int]:
        """Text -> class indices.

        Raises:
            CharsetError: if ``text`` holds characters outside the charset and ``on_unknown == "error"``.
        """
        missing = self.unknown(text)
        if missing:
            if on_unknown == "skip":
                return [self._index[c] for c in text if c in self._index]
            where = f" in sample {sample_id}" if sample_id else ""
            raise CharsetError(
                f"characters {missing!r} not in the model's charset{where} (text: {text!r}); "
                "add them to the training data or filter these samples"
            )
        return [self._index[c] for c in text]

    def decode(self, indices: Iterable[int]) -> str:
        """Class indices -> text (blank and out-of-range indices are dropped)."""
        n = len(self.symbols)
        return "".join(self.symbols[i - 1] for i in indices if 0 < i <= n)

    def to_list(self) -> list[str]:
        return list(self.symbols)
