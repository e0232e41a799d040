"""Shallow fusion of a character n-gram LM inside an autoregressive decoder's search (TrOCR).

A ``transformers`` logits processor: at every step, for each hypothesis, the ``top_k`` tokens the model
prefers get ``weight * log10 p_LM(token's characters | the hypothesis's text so far)`` added to their score, and
the other tokens are pruned (scoring every token of a 50k BPE vocabulary with an n-gram each step would cost
more than the network). The end-of-sequence token gets the LM's end-of-line probability. The LM is the same
ARPA file the CTC decoders use (characters, the space written ``|``), run by flashlight's KenLM; its states are
cached by text prefix, so each prefix is fed once.

With ``weight = 0`` the processor returns the scores untouched (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor


class CharLMFusion(LogitsProcessor):
    """A logits processor (callable on ``(input_ids, scores)``) adding a character LM's scores.

    Args:
        lm: ARPA / KenLM file of a character LM (``htrlab lm build``).
        token_text: the text of every vocabulary token ("" for special tokens, which the LM does not score).
        eos_id: the end-of-sequence token (scored with the LM's end of line).
        weight: LM weight (on log10 p, like ``--lm-weight`` of the CTC decoders).
        top_k: tokens per hypothesis and step that are scored; the others are pruned.
    """

    def __init__(
        self, lm: str | Path, token_text: Sequence[str], eos_id: int, weight: float, top_k: int = 16
    ):
        from htrlab.decoding.beam import load_kenlm

        self.token_text = list(token_text)
        self.eos_id = eos_id
        self.weight = weight
        self.top_k = top_k
        # LM tokens: the characters of the vocabulary, the space written "|" (a literal "|" shares it)
        lm_tokens = tuple(sorted({"|" if c == " " else c for t in self.token_text for c in t} | {"|"}))
        self.index = {c: i for i, c in enumerate(lm_tokens)}
        self.index[" "] = self.index["|"]
        self.lm = load_kenlm(lm, lm_tokens)
        self._states: dict[str, Any] = {"": self.lm.start(False)}

    def _state(self, prefix: str) -> Any:
        st = self._states.get(prefix)
        if st is None:
            st, _ = self.lm.score(self._state(prefix[:-1]), self.index.get(prefix[-1], self.index["|"]))
            self._states[prefix] = st
        return st

    def _log10(self, prefix: str, text: str) -> float:
        total, st = 0.0, self._state(prefix)
        for c in text:
            st, s = self.lm.score(st, self.index.get(c, self.index["|"]))
            total += s
        return total

    def prefix_text(self, ids: Sequence[int]) -> str:
        return "".join(self.token_text[i] if 0 <= i < len(self.token_text) else "" for i in ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:  # type: ignore[override]
        if self.weight == 0:
            return scores
        out = torch.full_like(scores, -math.inf)
        k = min(self.top_k, scores.shape[-1])
        top = scores.topk(k, dim=-1)
        for row in range(scores.shape[0]):
            prefix = self.prefix_text(input_ids[row, 1:].tolist())  # the start token has no text
            for val, tok in zip(top.values[row].tolist(), top.indices[row].tolist()):
                if tok == self.eos_id:
                    _, lm = self.lm.finish(self._state(prefix))
                elif self.token_text[tok]:
                    lm = self._log10(prefix, self.token_text[tok])
                else:
                    lm = 0.0
                out[row, tok] = val + self.weight * lm
        return out  # type: ignore[return-value]
