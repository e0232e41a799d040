"""A small neural character language model (LSTM), trained here and used in beam search (shallow fusion).

``htrlab lm train-neural --text brown.txt --dataset DATA --splits train -o charlm.safetensors`` trains it on
lines of text (each line ends with an end-of-line token, the model starts each line from a start state). The
file is an htrlab checkpoint (kind ``char-lm``: :mod:`htrlab.models.checkpoint`) with the vocabulary and sizes. In decoding, :class:`CharLSTMLM.Cursor`
steps the network one character at a time and is lazy: a beam search asks for the probability of many
continuations of each prefix, and the network only runs once per prefix that is actually extended.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from htrlab.errors import CheckpointError, ConfigError

EOL = "\n"  # end of a line (and the start symbol of the next one)
UNK = "\x04"
LN10 = math.log(10.0)


class CharLSTMLM(nn.Module):
    """Embedding -> LSTM -> linear over the vocabulary (characters + end of line + unknown)."""

    def __init__(
        self, vocab: Sequence[str], emb: int = 64, hidden: int = 512, layers: int = 1, dropout: float = 0.1
    ):
        super().__init__()
        self.vocab = list(vocab)
        if EOL not in self.vocab or UNK not in self.vocab:
            raise ConfigError("the character LM vocabulary needs the end-of-line and unknown symbols")
        self.index = {c: i for i, c in enumerate(self.vocab)}
        self.sizes = {"emb": emb, "hidden": hidden, "layers": layers}
        self.embed = nn.Embedding(len(self.vocab), emb)
        self.lstm = nn.LSTM(emb, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, len(self.vocab))

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        h, state = self.lstm(self.embed(x), state)
        return self.out(self.drop(h)), state

    def encode(self, text: str) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(c, unk) for c in text]

    @torch.no_grad()
    def log10_prob(self, text: str) -> float:
        """log10 p(text + end of line) from the start state."""
        self.eval()
        ids = [self.index[EOL], *self.encode(text), self.index[EOL]]
        logits, _ = self(torch.tensor([ids[:-1]]))
        lp = torch.log_softmax(logits[0], -1)
        return float(lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum()) / LN10

    # --- stepping, for beam search -------------------------------------------------------------------------
    class Cursor:
        """A prefix's position in the network: its next-character log10 distribution, computed on demand."""

        __slots__ = ("_dist", "lm", "parent", "state", "token")

        def __init__(self, lm: CharLSTMLM, parent: CharLSTMLM.Cursor | None, token: int, state: Any = None):
            self.lm, self.parent, self.token, self.state = lm, parent, token, state
            self._dist: np.ndarray | None = None

        @torch.no_grad()
        def dist(self) -> np.ndarray:
            """log10 p(next character | this prefix) over the LM vocabulary."""
            if self._dist is None:
                prev = None if self.parent is None else self.parent._hidden()
                logits, self.state = self.lm(torch.tensor([[self.token]]), prev)
                self._dist = (torch.log_softmax(logits[0, -1], -1) / LN10).numpy()
            return self._dist

        def _hidden(self) -> Any:
            if self.state is None:
                self.dist()
            return self.state

        def child(self, token: int) -> CharLSTMLM.Cursor:
            return CharLSTMLM.Cursor(self.lm, self, token)

    def start(self) -> CharLSTMLM.Cursor:
        self.eval()
        return CharLSTMLM.Cursor(self, None, self.index[EOL])

    # --- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path, facts: dict[str, Any] | None = None) -> Path:
        """Write the LM in htrlab's checkpoint format (``kind: char-lm``) with its vocabulary, sizes and
        training ``facts``."""
        from htrlab.models.checkpoint import save_weights

        meta = {"vocab": self.vocab, "sizes": self.sizes, "training": facts or {}}
        return save_weights(path, self.state_dict(), "char-lm", meta)

    @classmethod
    def load(cls, path: str | Path) -> CharLSTMLM:
        """The LM at ``path`` (written by ``htrlab lm train-neural``).

        Raises:
            CheckpointError: a missing, damaged or foreign file, or weights that do not fit, naming the file.
        """
        from htrlab.models.checkpoint import load_weights

        meta, tensors = load_weights(path, "char-lm")
        try:  # files written before the char LM joined the checkpoint format hold JSON strings
            vocab = json.loads(meta["vocab"]) if isinstance(meta["vocab"], str) else meta["vocab"]
            sizes = json.loads(meta["sizes"]) if isinstance(meta["sizes"], str) else meta["sizes"]
            if not isinstance(vocab, list) or not all(isinstance(c, str) for c in vocab):
                raise ValueError("the vocabulary is not a list of characters")
            if set(sizes) - {"emb", "hidden", "layers"} or not all(
                isinstance(v, int) and 1 <= v <= 8192 for v in sizes.values()
            ):
                raise ValueError(f"unexpected sizes {sizes}")
            lm = cls(vocab, **sizes)
            lm.load_state_dict(tensors)
        except (KeyError, ValueError, TypeError, RuntimeError, AttributeError, ConfigError) as exc:
            raise CheckpointError(f"{path}: not a usable character LM ({str(exc).splitlines()[0]})") from exc
        lm.eval()
        return lm


@torch.no_grad()
def bits_per_char(lm: CharLSTMLM, lines: Sequence[str]) -> float:
    """Mean bits per character (end-of-line included) of ``lines``, each scored from the start state."""
    lm.eval()
    total, n = 0.0, 0
    for line in lines:
        total += -lm.log10_prob(line) * math.log2(10.0)
        n += len(line) + 1
    return total / max(n, 1)
