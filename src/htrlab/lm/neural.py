"""A small neural character language model (LSTM), trained here and used in beam search (shallow fusion).

``htrlab lm train-neural --text brown.txt --dataset DATA --splits train -o charlm.safetensors`` trains it on
lines of text (each line ends with an end-of-line token, the model starts each line from a start state). The
file is safetensors with the vocabulary and sizes in its metadata. In decoding, :class:`CharLSTMLM.Cursor`
steps the network one character at a time and is lazy: a beam search asks for the probability of many
continuations of each prefix, and the network only runs once per prefix that is actually extended.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from htrlab.errors import ConfigError, DataError, ModelError
from htrlab.train.schedule import lr_factor

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
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "kind": "htrlab-char-lstm-lm",
            "vocab": json.dumps(self.vocab),
            "sizes": json.dumps(self.sizes),
        }
        meta["facts"] = json.dumps(facts or {})
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CharLSTMLM:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"neural LM {path} not found")
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise ModelError(f"{path}: not a safetensors file: {exc}") from exc
        if meta.get("kind") != "htrlab-char-lstm-lm":
            raise ModelError(
                f"{path}: not an htrlab neural character LM (train one with `htrlab lm train-neural`)"
            )
        lm = cls(json.loads(meta["vocab"]), **json.loads(meta["sizes"]))
        lm.load_state_dict(tensors)
        lm.eval()
        return lm


@dataclass
class NeuralLMReport:
    steps: int
    epochs: float
    seconds: float
    train_chars: int
    val_bits_per_char: float | None
    parameters: int


def _batches(ids: np.ndarray, batch: int, seq: int, rng: random.Random) -> Any:
    """Random contiguous windows of the concatenated text (every line starts after an end-of-line)."""
    n = len(ids) - seq - 1
    while True:
        starts = [rng.randrange(0, n) for _ in range(batch)]
        x = np.stack([ids[s : s + seq] for s in starts])
        y = np.stack([ids[s + 1 : s + seq + 1] for s in starts])
        yield torch.from_numpy(x).long(), torch.from_numpy(y).long()


@torch.no_grad()
def bits_per_char(lm: CharLSTMLM, lines: Sequence[str]) -> float:
    """Mean bits per character (end-of-line included) of ``lines``, each scored from the start state."""
    lm.eval()
    total, n = 0.0, 0
    for line in lines:
        total += -lm.log10_prob(line) * math.log2(10.0)
        n += len(line) + 1
    return total / max(n, 1)


def train_char_lm(
    lines: Sequence[str],
    out: str | Path,
    val_lines: Sequence[str] = (),
    minutes: float = 10.0,
    max_steps: int = 0,
    hidden: int = 512,
    layers: int = 1,
    emb: int = 64,
    batch: int = 64,
    seq: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    log: Any = sys.stderr,
) -> NeuralLMReport:
    """Train a :class:`CharLSTMLM` on ``lines`` for ``minutes`` of wall clock (or ``max_steps``), cosine
    learning-rate decay over that budget, and save it to ``out``."""
    lines = [t for t in lines if t.strip()]
    if not lines:
        raise DataError("no text to train a character language model on")
    counts = Counter(c for t in lines for c in t)
    vocab = [EOL, UNK, *sorted(c for c, k in counts.items() if k >= 2 and c not in (EOL, UNK))]
    torch.manual_seed(seed)
    rng = random.Random(seed)
    lm = CharLSTMLM(vocab, emb=emb, hidden=hidden, layers=layers)
    ids = np.array(lm.encode(EOL + EOL.join(lines) + EOL), dtype=np.int64)
    if len(ids) < seq + 2:
        seq = max(2, len(ids) - 2)
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.01)
    budget = minutes * 60.0
    t0 = time.perf_counter()
    step = 0
    lm.train()
    for x, y in _batches(ids, batch, seq, rng):
        elapsed = time.perf_counter() - t0
        frac = step / max_steps if max_steps else elapsed / budget
        if frac >= 1.0:
            break
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step, 0, frac, "cosine", 0.05)
        logits, _ = lm(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        step += 1
        if log is not None and step % 100 == 0:
            print(
                f"char LM: step {step}, loss {loss.item() / math.log(2):.3f} bits/char, {elapsed:.0f}s",
                file=log,
            )
    seconds = time.perf_counter() - t0
    bpc = bits_per_char(lm, val_lines) if val_lines else None
    report = NeuralLMReport(
        steps=step,
        epochs=step * batch * seq / len(ids),
        seconds=seconds,
        train_chars=len(ids),
        val_bits_per_char=bpc,
        parameters=sum(p.numel() for p in lm.parameters()),
    )
    lm.save(out, facts=report.__dict__)
    return report
