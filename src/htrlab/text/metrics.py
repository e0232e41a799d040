"""Character and word error rates.

CER = (character substitutions + deletions + insertions) / number of reference characters, summed over all
lines (corpus level, so long lines weigh more than short ones). WER is the same over words, where words are
the whitespace-separated tokens of the NFC-normalised text (punctuation stays attached to its word).
Edit distances come from RapidFuzz's Levenshtein implementation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


@dataclass
class ErrorCounts:
    char_errors: int = 0
    chars: int = 0
    word_errors: int = 0
    words: int = 0
    lines: int = 0

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else float(self.char_errors > 0)

    @property
    def wer(self) -> float:
        return self.word_errors / self.words if self.words else float(self.word_errors > 0)

    def add(self, ref: str, hyp: str) -> None:
        self.char_errors += Levenshtein.distance(ref, hyp)
        self.chars += len(ref)
        rw, hw = ref.split(), hyp.split()
        self.word_errors += Levenshtein.distance(rw, hw)
        self.words += len(rw)
        self.lines += 1


def count_errors(refs: Sequence[str], hyps: Sequence[str]) -> ErrorCounts:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    counts = ErrorCounts()
    for r, h in zip(refs, hyps):
        counts.add(r, h)
    return counts


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level character error rate."""
    return count_errors(refs, hyps).cer


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level word error rate."""
    return count_errors(refs, hyps).wer


def not_reading(references: Sequence[str], hypotheses: Sequence[str]) -> str:
    """A warning when a model's output on a split does not depend on the image, else "".

    Two failures look like slow learning in a CER curve but are not: CTC's all-blank phase (empty output for
    most lines) and a collapsed model that writes the same text for every image (an autoregressive decoder
    that learnt only a language prior, or CTC stuck on frequent letters: "twrgy" for every line).
    """
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if len(pairs) < 10:
        return ""
    hyps = [h for _, h in pairs]
    empty = sum(not h.strip() for h in hyps) / len(hyps)
    if empty >= 0.5:
        return (
            f"{empty:.0%} of the lines are read as empty: the model is still in CTC's all-blank phase "
            "(train longer, raise train.lr, or start from a pretrained model)"
        )
    text, n = Counter(hyps).most_common(1)[0]
    distinct_refs = len({r for r, _ in pairs})
    if n / len(hyps) >= 0.5 and distinct_refs > 1:
        return (
            f"{n / len(hyps):.0%} of the lines get the same reading {text!r}: the output does not depend "
            "on the image (a language prior or a collapsed model), whatever the CER says"
        )
    return ""
