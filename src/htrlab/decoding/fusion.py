"""Shallow fusion of several language models in one CTC beam search.

flashlight-text's decoder takes one LM object; :class:`FusionLM` is that object (a subclass of its Python ``LM``
class) and sums weighted log10 scores of up to three models:

* a character n-gram (ARPA, through flashlight's KenLM) - scores every character;
* a word n-gram (:class:`htrlab.lm.word.WordNgram`) - scores each word when it ends (a space or the line's
  end); inside a word it adds nothing;
* a neural character LM (:class:`htrlab.lm.neural.CharLSTMLM`) - scores every character.

The decoder identifies a hypothesis's LM state by object: ``LMState.child(token)`` returns the same child for
the same token, so the states form a trie of the prefixes searched, and each state's information (the KenLM
state, the words so far, the unfinished word, the neural cursor) is computed once and kept in a table that is
emptied when the next line starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from htrlab.errors import ConfigError
from htrlab.text.charset import Charset


@dataclass
class FusionWeights:
    char: float = 0.0  # weight of the character n-gram's log10 p
    word: float = 0.0  # weight of the word n-gram's log10 p (added at word ends)
    neural: float = 0.0  # weight of the neural character LM's log10 p


def make_fusion_lm(
    charset: Charset,
    weights: FusionWeights,
    char_lm: str | Path | None = None,
    word_lm: Any = None,
    neural_lm: Any = None,
) -> Any:
    """A flashlight LM summing the given models (see the module docstring)."""
    from flashlight.lib.text.decoder import LM, LMState

    from htrlab.decoding.beam import lm_tokens, load_kenlm

    if char_lm is None and word_lm is None and neural_lm is None:
        raise ConfigError("fusion needs at least one language model")
    kenlm = load_kenlm(char_lm, lm_tokens(charset)) if char_lm is not None else None
    chars = ["", *charset.symbols]  # class index -> character (0 = blank)
    space = charset.encode(" ")[0] if " " in charset else -1
    if neural_lm is not None:
        unk = neural_lm.index["\x04"]
        to_neural = [unk] + [neural_lm.index.get(c, unk) for c in charset.symbols]
        neural_eol = neural_lm.index["\n"]
    word_order = max(getattr(word_lm, "order", 1) - 1, 0)

    class _Fusion(LM):  # type: ignore[misc]
        def __init__(self) -> None:
            LM.__init__(self)
            self.info: dict[Any, tuple[Any, tuple[str, ...], str, Any]] = {}
            self.cache: dict[Any, float] = {}

        def start(self, start_with_nothing: bool) -> Any:
            self.info.clear()
            self.cache.clear()
            st = LMState()
            ks = kenlm.start(start_with_nothing) if kenlm is not None else None
            cur = neural_lm.start() if neural_lm is not None else None
            self.info[st] = (ks, (), "", cur)
            return st

        def _word_end(self, hist: tuple[str, ...], partial: str) -> tuple[float, tuple[str, ...]]:
            if not partial or word_lm is None:
                return 0.0, hist
            s, w = word_lm.score_token(partial, hist)
            if w is not None and word_order:
                hist = (*hist, w)[-word_order:]
            return s, hist

        def score(self, state: Any, token: int) -> tuple[Any, float]:
            out = state.child(token)
            cached = self.cache.get(out)
            if cached is not None:
                return out, cached
            ks, hist, partial, cur = self.info[state]
            total = 0.0
            if kenlm is not None:
                ks2, s = kenlm.score(ks, token)
                total += weights.char * s
            else:
                ks2 = None
            if token == space:
                s, hist2 = self._word_end(hist, partial)
                total += weights.word * s
                partial2 = ""
            else:
                hist2, partial2 = hist, partial + chars[token]
            cur2 = None
            if cur is not None:
                tok = to_neural[token]
                total += weights.neural * float(cur.dist()[tok])
                cur2 = cur.child(tok)
            self.info[out] = (ks2, hist2, partial2, cur2)
            self.cache[out] = total
            return out, total

        def finish(self, state: Any) -> tuple[Any, float]:
            ks, hist, partial, cur = self.info[state]
            total = 0.0
            if kenlm is not None:
                ks, s = kenlm.finish(ks)
                total += weights.char * s
            s, _ = self._word_end(hist, partial)
            total += weights.word * s
            if cur is not None:
                total += weights.neural * float(cur.dist()[neural_eol])
            return state, total

    return _Fusion()
