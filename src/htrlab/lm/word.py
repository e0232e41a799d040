"""Word n-gram language models: the CMU US-English 3-gram that ships in PyPI ``pocketsphinx``, or one estimated
here from text (``htrlab lm build --unit word``), both queried through pocketsphinx's ``NGramModel``.

Word models know lower-case words without punctuation, while handwriting has capitals, punctuation glued to
words ("Kew," "(literally"), ampersands, numbers and words broken at the line end. :func:`word_key` says how a
written token meets the model: case is folded, leading and trailing punctuation and symbols are stripped,
``&`` reads as "and", and a token with no letters left (a number, a dash) is not a word: it gets a fixed
``other_log10`` instead of a probability. Words the model does not know get ``oov_score``; both are tuned with
the LM weight on validation data. Estimation uses pocketsphinx's ``ArpaBoLM`` (Katz-style back-off with a fixed
discount mass, trigrams), which normalises tokens with the same rule.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from htrlab.errors import ConfigError, DataError, ModelError

CMU_EN_US = "cmu"  # the name of the pretrained word 3-gram inside pocketsphinx
_STRIP = {"P", "S", "C", "M", "Z"}  # Unicode categories stripped at a word's ends (as ArpaBoLM's norm_token)
_ZERO = -536870912  # pocketsphinx's log of probability zero (an unknown word)


def word_key(token: str) -> str | None:
    """The model's form of a written token: lower-cased, punctuation and symbols stripped from both ends,
    ``&`` -> ``and``; ``None`` when no letter is left (numbers, dashes, lone punctuation)."""
    bare = token.strip("()[]\"'.,;:")
    if bare in ("&", "&c"):
        return "and" if bare == "&" else "etc"
    t = token.lower()
    while t and unicodedata.category(t[0])[0] in _STRIP:
        t = t[1:]
    while t and unicodedata.category(t[-1])[0] in _STRIP:
        t = t[:-1]
    if not any(ch.isalpha() for ch in t):
        return None
    return t


def cmu_model_path() -> Path:
    """The CMU US-English word 3-gram (``en-us.lm.bin``) inside the installed pocketsphinx package."""
    try:
        from pocketsphinx import get_model_path
    except ImportError as exc:
        raise ModelError("the CMU word LM ships in PyPI pocketsphinx: pip install pocketsphinx") from exc
    path = Path(get_model_path("en-us/en-us.lm.bin"))
    if not path.is_file():
        raise ModelError(f"pocketsphinx is installed but its word LM {path} is missing")
    return path


class WordNgram:
    """A word n-gram model read by pocketsphinx (ARPA text or its binary formats), queried word by word.

    Args:
        path: an ARPA / pocketsphinx binary file, or ``"cmu"`` for the CMU US-English 3-gram.
        oov_score: log10 score of a word the model does not know (``DecoderConfig.oov_score``, tuned).
        other_log10: log10 score of a token that is not a word (see :func:`word_key`).
    """

    def __init__(self, path: str | Path, oov_score: float, other_log10: float = -3.0):
        try:
            from pocketsphinx import NGramModel
        except ImportError as exc:
            raise ModelError("word language models need PyPI pocketsphinx: pip install pocketsphinx") from exc

        self.path = cmu_model_path() if str(path) == CMU_EN_US else Path(path)
        if not self.path.is_file():
            raise ConfigError(f"word language model {self.path} not found")
        try:
            self.model = NGramModel.readfile(str(self.path))
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"{self.path}: not a readable ARPA or pocketsphinx LM file: {exc}") from exc
        # pocketsphinx reports probabilities as logarithms in base 1.0001 (its LogMath default)
        self.to_log10 = math.log10(1.0001)
        self.oov_score = oov_score
        self.other_log10 = other_log10
        self.order = self._order()
        self._cache: dict[tuple[str, ...], int] = {}

    def _order(self) -> int:
        """The model's order, from the ARPA header (pocketsphinx does not expose it); 3 for binaries."""
        try:
            with self.path.open("rb") as fh:
                head = fh.read(4096).decode("utf-8", "replace")
        except OSError as exc:  # pragma: no cover - checked above
            raise ConfigError(f"{self.path}: {exc}") from exc
        orders = [int(x.split("=")[0]) for x in head.split("ngram ")[1:] if x.split("=")[0].isdigit()]
        return max(orders) if "\\data\\" in head and orders else 3

    def log10_prob(self, word: str, history: Sequence[str] = ()) -> float:
        """log10 p(word | history) for model-form words (:func:`word_key`); history oldest first."""
        key = (word, *history[-(self.order - 1) :][::-1]) if self.order > 1 else (word,)
        raw = self._cache.get(key)
        if raw is None:
            raw = self._cache[key] = self.model.prob(list(key))
        return self.oov_score if raw <= _ZERO else raw * self.to_log10

    def score_token(self, token: str, history: Sequence[str]) -> tuple[float, str | None]:
        """(log10 score, model-form word or None) of a written token after ``history`` (model-form words)."""
        w = word_key(token)
        if w is None:
            return self.other_log10, None
        return self.log10_prob(w, history), w

    def log10_text(self, text: str) -> float:
        """Sum of the token scores of a line (no sentence start or end: a line is not a sentence)."""
        hist: list[str] = []
        total = 0.0
        for tok in text.split():
            s, w = self.score_token(tok, hist)
            total += s
            if w is not None:
                hist.append(w)
        return total


def build_word_ngram(lines: Iterable[str], path: str | Path, discount_mass: float = 0.5) -> dict[str, Any]:
    """Estimate a word 3-gram (pocketsphinx ``ArpaBoLM``) from lines of text and write it as ARPA.

    Tokens are normalised as :func:`word_key` does (lower case, punctuation stripped, ``&`` -> and, tokens
    without letters dropped), so the model's words are the ones the decoder will ask for.
    """
    from pocketsphinx.lm import ArpaBoLM

    text = []
    for line in lines:
        words = [w for w in (word_key(t) for t in line.split()) if w]
        if words:
            text.append(" ".join(words))
    if not text:
        raise DataError("no words to build a word language model from")
    lm = ArpaBoLM(text="\n".join(text), discount_mass=discount_mass)
    lm.compute()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lm.write_file(str(path))
    return {"lines": len(text), "words": sum(len(t.split()) for t in text), "vocabulary": len(lm.grams_1)}
