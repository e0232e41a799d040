"""Character n-gram language models: interpolated Kneser-Ney estimation, ARPA output, and scoring.

Written here because no maintained Python package estimates high-order n-grams (KenLM's ``lmplz`` is a C++
program built from source, and pocketsphinx's ``ArpaBoLM`` stops at trigrams). The estimator is interpolated
Kneser-Ney (Chen & Goodman 1998) with one discount per order, D_n = n1 / (n1 + 2 n2) from that order's counts
of counts:

    p_n(w | h) = max(c_n(hw) - D_n, 0) / c_n(h.) + gamma(h) p_{n-1}(w | h'),   gamma(h) = D_n N1+(h.) / c_n(h.)

where c_N are raw counts at the highest order and, below it, continuation counts (the number of distinct
characters seen before the n-gram), except for n-grams that start with the sentence start ``<s>``, which keep
raw counts. The unigram level interpolates with the uniform distribution over the vocabulary. Written as ARPA,
a seen n-gram stores its interpolated probability and a context its gamma as back-off weight, so ARPA readers
(KenLM) reproduce these probabilities exactly; the tests check that against KenLM.

A line of text is one sentence; its characters are the tokens, with the space written as ``|`` (the word
separator token of the decoders).
"""

from __future__ import annotations

import gzip
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from htrlab.errors import ConfigError, DataError

BOS, EOS = "\x02", "\x03"  # one character each inside the estimator; <s> and </s> in ARPA files
SPACE_TOKEN = "|"


def to_tokens(line: str) -> str:
    """A line of text as the model's token string (space -> ``|``)."""
    return line.replace(" ", SPACE_TOKEN)


UNK = "\x04"


def arpa_token(ch: str) -> str:
    return {BOS: "<s>", EOS: "</s>", UNK: "<unk>"}.get(ch, ch)


@dataclass
class CharNgram:
    """An interpolated Kneser-Ney character n-gram model (see the module docstring)."""

    order: int
    vocab: list[str]  # tokens that can be predicted (characters, ``|``, and EOS)
    probs: list[dict[str, float]] = field(default_factory=list)  # per order n-1: n-gram -> p_n(w | h)
    gammas: list[dict[str, float]] = field(
        default_factory=list
    )  # per order n-1: context (n-1 chars) -> gamma

    def prob(self, history: str, token: str) -> float:
        """p(token | history) with the model's interpolation; ``history`` may include BOS."""
        h = history[-(self.order - 1) :] if self.order > 1 else ""
        return self._p(h, token)

    def _p(self, h: str, w: str) -> float:
        n = len(h) + 1
        seen = self.probs[n - 1].get(h + w)
        if seen is not None:
            return seen
        if n == 1:
            return self.gammas[0][""] / len(self.vocab)
        return self.gammas[n - 1].get(h, 1.0) * self._p(h[1:], w)

    def log10_prob(self, text: str) -> float:
        """log10 p(text) of a whole line (with its end token)."""
        s = BOS + to_tokens(text) + EOS
        return sum(math.log10(self.prob(s[:i], s[i])) for i in range(1, len(s)))

    def write_arpa(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines_by_order = []
        for n in range(1, self.order + 1):
            rows = []
            probs = dict(self.probs[n - 1])
            if n == 1:
                probs[BOS] = 0.0  # never predicted; ARPA convention -99
                for v in self.vocab:  # every vocabulary token is a unigram, seen or not
                    probs.setdefault(v, self.gammas[0][""] / len(self.vocab))
                probs[UNK] = self.gammas[0][""] / len(self.vocab)  # out-of-vocabulary: the uniform share
            gam = self.gammas[n] if n < self.order else {}
            for gram in sorted(probs):
                p = probs[gram]
                lp = -99.0 if p <= 0 else math.log10(p)
                toks = " ".join(arpa_token(c) for c in gram)
                g = gam.get(gram)
                rows.append(f"{lp:.6f}\t{toks}" + (f"\t{math.log10(g):.6f}" if g else ""))
            lines_by_order.append(rows)
        fh = io.StringIO()
        fh.write("\n\\data\\\n")
        for n, rows in enumerate(lines_by_order, 1):
            fh.write(f"ngram {n}={len(rows)}\n")
        for n, rows in enumerate(lines_by_order, 1):
            fh.write(f"\n\\{n}-grams:\n")
            fh.write("\n".join(rows) + "\n")
        fh.write("\n\\end\\\n")
        data = fh.getvalue().encode("utf-8")
        # .gz: gzipped with no name or time stamp in its header, so that the same text gives the same bytes
        # (KenLM reads gzipped ARPA files)
        path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0) if path.suffix == ".gz" else data)
        return path


def _discount(counts: Counter[str]) -> float:
    coc = Counter(c for c in counts.values() if c <= 2)
    n1, n2 = coc.get(1, 0), coc.get(2, 0)
    if n1 == 0:
        return 0.5
    return min(0.95, n1 / (n1 + 2 * n2)) if n2 else 0.5


def build_char_ngram(lines: Iterable[str], order: int = 6, prune: int = 0) -> CharNgram:
    """Estimate an interpolated Kneser-Ney character ``order``-gram model from lines of text.

    ``prune > 1`` leaves out the n-grams of order 3 and above seen fewer than ``prune`` times (count
    pruning, as SRILM's ``-gtNmin`` and KenLM's ``--prune``): the model of millions of characters of text then
    fits in a package. The kept n-grams keep their probabilities and every context's back-off weight is
    recomputed so that its distribution still sums to one.

    Raises:
        ConfigError: for an order below 1 or a negative ``prune``; DataError: when there is no text.
    """
    if order < 1:
        raise ConfigError(f"n-gram order must be >= 1, got {order}")
    if prune < 0:
        raise ConfigError(f"prune must be >= 0, got {prune}")
    sents = [BOS + to_tokens(t) + EOS for t in lines if t.strip()]
    if not sents:
        raise DataError("no text to build a language model from")
    for s in sents:
        bad = {BOS, EOS} & set(s[1:-1])
        if bad:
            raise DataError(f"text contains reserved control characters {sorted(map(repr, bad))}")
    # raw counts of every order (n-grams never predict BOS, so they start at any position but end after it)
    raw: list[Counter[str]] = [Counter() for _ in range(order)]
    for s in sents:
        for i in range(1, len(s)):
            for n in range(1, order + 1):
                if i - n + 1 < 0:
                    break
                raw[n - 1][s[i - n + 1 : i + 1]] += 1
    # adjusted counts: raw at the top order and for n-grams starting with BOS, continuation counts otherwise
    adj: list[Counter[str]] = [Counter() for _ in range(order)]
    adj[order - 1] = raw[order - 1]
    for n in range(1, order):
        cont: Counter[str] = Counter()
        for gram in raw[n]:  # each distinct (n+1)-gram x+g adds one left extension to g
            cont[gram[1:]] += 1
        for gram, c in raw[n - 1].items():
            adj[n - 1][gram] = c if gram[0] == BOS else cont.get(gram, 0) or c
    vocab = sorted({ch for s in sents for ch in s[1:]})
    probs: list[dict[str, float]] = []
    gammas: list[dict[str, float]] = []
    for n in range(1, order + 1):
        counts = adj[n - 1]
        d = _discount(counts)
        total: defaultdict[str, int] = defaultdict(int)
        types: defaultdict[str, int] = defaultdict(int)
        for gram, c in counts.items():
            total[gram[:-1]] += c
            types[gram[:-1]] += 1
        gam = {h: d * types[h] / total[h] for h in total}
        p_n: dict[str, float] = {}
        for gram, c in counts.items():
            h = gram[:-1]
            lower = 1.0 / len(vocab) if n == 1 else _lower(probs, gammas, gram[1:], len(vocab))
            p_n[gram] = max(c - d, 0.0) / total[h] + gam[h] * lower
        probs.append(p_n)
        gammas.append(gam)
    if prune > 1:
        _prune(probs, gammas, raw, prune, len(vocab))
    return CharNgram(order, vocab, probs, gammas)


def _prune(
    probs: list[dict[str, float]],
    gammas: list[dict[str, float]],
    raw: list[Counter[str]],
    prune: int,
    vocab_size: int,
) -> None:
    """Count pruning in place (see :func:`build_char_ngram`). A kept n-gram's context is always kept too (it
    was seen at least as often), as ARPA readers require. Orders are done from the lowest up, so each back-off
    weight is computed against the already pruned lower orders."""
    for n in range(3, len(probs) + 1):
        kept = {g: p for g, p in probs[n - 1].items() if raw[n - 1][g] >= prune}
        mass: defaultdict[str, float] = defaultdict(float)
        lower: defaultdict[str, float] = defaultdict(float)
        for g, p in kept.items():
            mass[g[:-1]] += p
            lower[g[:-1]] += _lower(probs, gammas, g[1:], vocab_size)
        probs[n - 1] = kept
        gammas[n - 1] = {
            h: max(1.0 - mass[h], 1e-12) / (1.0 - lower[h]) if lower[h] < 1.0 - 1e-12 else 1.0 for h in mass
        }


def _lower(
    probs: list[dict[str, float]], gammas: list[dict[str, float]], gram: str, vocab_size: int
) -> float:
    """p_{len(gram)}(gram[-1] | gram[:-1]) from the lower orders already estimated."""
    n = len(gram)
    p = probs[n - 1].get(gram)
    if p is not None:
        return p
    if n == 1:
        return gammas[0][""] / vocab_size
    return gammas[n - 1].get(gram[:-1], 1.0) * _lower(probs, gammas, gram[1:], vocab_size)
