"""Training the LSTM character language model (:class:`htrlab.lm.neural.CharLSTMLM`) on text lines for a
wall-clock budget; ``htrlab lm train-neural`` runs it."""

from __future__ import annotations

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

from htrlab.errors import DataError
from htrlab.lm.neural import EOL, UNK, CharLSTMLM, bits_per_char
from htrlab.train.schedule import lr_factor


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
