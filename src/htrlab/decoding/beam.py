"""CTC beam search, with or without an external language model (shallow fusion), on flashlight-text.

flashlight-text's lexicon-free beam search decoder (C++, PyPI ``flashlight-text``) does the search; htrlab maps
its charset onto the decoder's tokens (the space is the word separator ``|``) and the language model is an
ARPA/KenLM file over the same tokens (``htrlab lm build``). A hypothesis scores

    log p_ctc + lm_weight * log10 p_lm + word_score * (number of words)

``lm_weight = 0`` (or no LM) is plain CTC prefix beam search.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from htrlab.decoding.config import DecoderConfig
from htrlab.decoding.greedy import Decoded, best_path_confidences
from htrlab.errors import ConfigError, ModelError
from htrlab.text.charset import Charset
from htrlab.text.normalize import normalize_text

_DEFAULTS = DecoderConfig()

LM_EOS = "</s>"


@dataclass
class BeamConfig:
    """The beam search's share of a :class:`htrlab.decoding.config.DecoderConfig`, whose defaults these are
    (the one place decoder defaults live; ``make_decoder`` fills it). ``lm_weight`` and ``word_score`` are tuned
    on validation data (``htrlab lm tune``); a weight counts only when its LM is given to the decoder."""

    beam_size: int = _DEFAULTS.beam_size  # hypotheses kept per frame
    token_beam: int = _DEFAULTS.token_beam  # tokens tried per frame, best first (0 = all)
    beam_threshold: float = _DEFAULTS.beam_threshold  # drop hypotheses this far (log) below the best
    lm_weight: float = _DEFAULTS.lm_weight  # alpha: weight of the char LM's log10 probability (KenLM's unit)
    word_score: float = _DEFAULTS.word_score  # beta: added per word (a space, and the line's end)
    word_lm_weight: float = _DEFAULTS.word_lm_weight  # a word n-gram's log10 p (htrlab.decoding.fusion)
    neural_lm_weight: float = _DEFAULTS.neural_lm_weight  # a neural character LM's log10 p

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.token_beam < 0 or self.beam_threshold <= 0:
            raise ConfigError("beam: beam_size >= 1, token_beam >= 0 and beam_threshold > 0 are required")


def _flashlight() -> Any:
    try:
        from flashlight.lib.text import decoder
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelError("beam decoding needs PyPI flashlight-text (pip install flashlight-text)") from exc
    return decoder


_KENLM_CACHE: dict[tuple[str, int, tuple[str, ...]], Any] = {}


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the process's stderr (file descriptor 2) for the block: KenLM's C++ loader writes a progress bar
    and advice there that no Python option turns off, and that would land among htrlab's own messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_kenlm(path: str | Path, tokens: tuple[str, ...]) -> Any:
    """A KenLM model (flashlight's) whose token ``i`` is ``tokens[i]``, loaded once per (file, tokens): an ARPA
    file of a 6-gram takes seconds to read, and tuning builds many decoders over the same LM."""
    from flashlight.lib.text import dictionary
    from flashlight.lib.text.decoder.kenlm import KenLM

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"language model {path} not found")
    key = (str(path.resolve()), path.stat().st_mtime_ns, tokens)
    if key not in _KENLM_CACHE:
        vocab = dictionary.Dictionary()
        for t in tokens:
            vocab.add_entry(t)
        try:
            with _quiet_stderr():
                _KENLM_CACHE[key] = (KenLM(str(path), vocab), vocab)  # the model keeps its token mapping
        except Exception as exc:  # KenLM raises its own types for unreadable files
            # its message starts with the C++ source location; the last line says what was wrong
            why = ([ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__])[-1]
            raise ConfigError(f"{path}: not a readable ARPA or KenLM binary file: {why}") from exc
    return _KENLM_CACHE[key][0]


def lm_tokens(charset: Charset) -> tuple[str, ...]:
    """The decoder's tokens: the blank, then the charset's characters with the space written ``|``."""
    return ("<blank>", *("|" if ch == " " else ch for ch in charset.symbols))


class BeamDecoder:
    """Beam search over one model's output classes.

    Args:
        charset: the model's characters (class 0 is the CTC blank).
        cfg: beam settings.
        lm: path of an ARPA (or KenLM binary) character LM whose tokens are the charset's characters with the
            space written ``|`` (see :mod:`htrlab.lm.ngram`), or ``None``; weighted by ``cfg.lm_weight``.
        word_lm: a :class:`htrlab.lm.word.WordNgram`, weighted by ``cfg.word_lm_weight``.
        neural_lm: a :class:`htrlab.lm.neural.CharLSTMLM`, weighted by ``cfg.neural_lm_weight``.

    A character LM alone runs inside flashlight (C++); with a word or neural LM the models are summed by
    :func:`htrlab.decoding.fusion.make_fusion_lm` in Python, which is slower.
    """

    def __init__(
        self,
        charset: Charset,
        cfg: BeamConfig | None = None,
        lm: str | Path | None = None,
        word_lm: Any = None,
        neural_lm: Any = None,
    ):
        dec = _flashlight()
        self.charset = charset
        self.lm_path = Path(lm) if lm is not None else None
        self.word_lm, self.neural_lm = word_lm, neural_lm
        self.cfg = cfg or BeamConfig()
        self.space = charset.encode(" ")[0] if " " in charset else -1
        lm_weight = self.cfg.lm_weight
        if word_lm is not None or neural_lm is not None:
            from htrlab.decoding.fusion import FusionWeights, make_fusion_lm

            weights = FusionWeights(self.cfg.lm_weight, self.cfg.word_lm_weight, self.cfg.neural_lm_weight)
            self.lm = make_fusion_lm(charset, weights, lm, word_lm, neural_lm)
            lm_weight = 1.0  # the weights are applied inside the fusion LM
        else:
            self.lm = dec.ZeroLM() if lm is None else load_kenlm(lm, lm_tokens(charset))
        opts = dec.LexiconFreeDecoderOptions(
            beam_size=self.cfg.beam_size,
            beam_size_token=self.cfg.token_beam or len(charset),
            beam_threshold=self.cfg.beam_threshold,
            lm_weight=lm_weight,
            sil_score=self.cfg.word_score,
            log_add=False,
            criterion_type=dec.CriterionType.CTC,
        )
        # without a space in the charset, no token is a word separator (the blank never scores as one)
        sil = self.space if self.space >= 0 else Charset.BLANK
        self.decoder = dec.LexiconFreeDecoder(opts, self.lm, sil, Charset.BLANK, [])

    def decode_one(self, log_probs: np.ndarray, nbest: int = 1) -> list[tuple[str, float]]:
        """(T, C) log-probabilities of one line -> up to ``nbest`` (text, total score), best first."""
        em = np.ascontiguousarray(log_probs, dtype=np.float32)
        t, c = em.shape
        if c != len(self.charset):
            raise ModelError(f"beam decoding: {c} output classes but the charset has {len(self.charset)}")
        if t == 0:
            return [("", 0.0)]
        results = self.decoder.decode(em.ctypes.data, t, c)
        out = []
        for r in results[:nbest]:
            path = [k for k, _ in itertools.groupby(r.tokens) if k != Charset.BLANK and k >= 0]
            out.append((normalize_text(self.charset.decode(path)), float(r.score)))
        return out or [("", 0.0)]

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Decoded]:
        """Batch interface of :func:`htrlab.decoding.greedy.greedy_decode`: (N, T, C), (N,) -> decoded lines.

        The confidence is the geometric mean frame probability of the greedy path (the same quantity as greedy
        decoding reports), so it stays comparable between decoders.
        """
        lp = log_probs.float().cpu()
        confs = best_path_confidences(lp, lengths)
        return [
            Decoded(self.decode_one(lp[i, : int(lengths[i])].numpy())[0][0], conf)
            for i, conf in enumerate(confs)
        ]
