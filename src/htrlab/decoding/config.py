"""The decoder settings, in one place: :class:`DecoderConfig` holds every setting with its default, and
:func:`make_decoder` turns it into a decoder. The command line's options, ``--decoding`` files, the bundled
model's tuned settings and the Python API (:func:`htrlab.load`) all fill a ``DecoderConfig``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from htrlab.errors import ConfigError

DECODERS_HELP = (
    "auto (default): for the bundled default model, beam search with its bundled character LM at the settings "
    "tuned on Hooker val (docs/RESULTS.md), for other models greedy, or beam+lm when an LM is given; "
    "greedy (best path); beam (CTC prefix beam search); beam+LMS: beam search fused with language models, "
    "LMS one or more of char (--lm), word (--word-lm), neural (--neural-lm) joined by '+', or lm for every one "
    "given (beam+lm, beam+char+word, ...); rescore or rescore+LMS: N-best of that beam search rescored by a "
    "causal LLM (--rescore-lm)"
)
LM_PARTS = ("lm", "char", "word", "neural")


@dataclass
class DecoderConfig:
    """How CTC output becomes text. ``decoder`` names the search (see :data:`DECODERS_HELP`); the rest are its
    settings, used only by the searches that need them."""

    decoder: str = "auto"
    lm: str | None = None  # character n-gram LM (ARPA from `htrlab lm build`)
    lm_weight: float = 0.5  # weight of the character LM's log10 p
    word_lm: str | None = None  # 'cmu' or a word ARPA file
    word_lm_weight: float = 0.5
    oov_score: float = -6.0  # word LM log10 score of an unknown word
    neural_lm: str | None = None  # `htrlab lm train-neural` output
    neural_lm_weight: float = 0.5
    word_score: float = 0.0  # beta: added per word
    beam_size: int = 16
    token_beam: int = 0  # characters tried per frame, most likely first (0 = all)
    beam_threshold: float = 30.0  # drop hypotheses this far (log) below the best (no command-line option)
    rescore_lm: str = "smollm2"  # causal LM for rescore: smollm2 or a model dir
    rescore_weight: float = 0.3  # weight of the LLM's log10 p
    length_bonus: float = 0.5  # rescoring score added per character
    nbest: int = 8  # readings per line for rescore

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def filled(
        self, settings: dict[str, Any], given: frozenset[str] | set[str] = frozenset()
    ) -> DecoderConfig:
        """A copy with ``settings`` in the fields that are neither in ``given`` (chosen by the user) nor changed
        from their defaults; keys that are not settings are ignored. Numbers keep their field's type."""
        default = asdict(DecoderConfig())
        mine = asdict(self)
        new = {
            k: typed_setting(k, v)
            for k, v in settings.items()
            if k in default and k not in given and mine[k] == default[k]
        }
        return replace(self, **new)


def typed_setting(key: str, value: Any) -> Any:
    """``value`` in the type of the setting ``key`` (integer settings stay integers)."""
    default = getattr(DecoderConfig, key)
    if isinstance(default, bool) or value is None or not isinstance(default, int | float):
        return value
    return type(default)(value)


def read_decoding_file(path: str | Path) -> dict[str, Any]:
    """The settings of a ``--decoding`` JSON (``htrlab lm tune`` output, or a bare mapping)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--decoding {path}: cannot read JSON: {exc}") from exc
    settings = doc.get("settings", doc) if isinstance(doc, dict) else None
    if not isinstance(settings, dict):
        raise ConfigError(f"--decoding {path}: not a JSON object of settings")
    return settings


def resolve(
    cfg: DecoderConfig, model: Any = None, given: frozenset[str] | set[str] = frozenset()
) -> DecoderConfig:
    """``cfg`` with ``decoder: auto`` made concrete for ``model`` (a path or ``"default"``): for the bundled
    default model its bundled LM at its tuned settings (filling the settings the user left alone), unless the
    user brought word or neural LMs; for other models greedy, or ``beam+lm`` when an LM is given."""
    if cfg.decoder != "auto":
        return cfg
    from htrlab.bundled import default_decoding, is_default_model

    bundled = default_decoding() if is_default_model(model) else None
    if bundled is None:
        return replace(cfg, decoder="beam+lm" if cfg.lm or cfg.word_lm or cfg.neural_lm else "greedy")
    if cfg.word_lm or cfg.neural_lm:  # the user's LMs, not the bundled settings
        return replace(cfg, decoder="beam+lm")
    settings = {k: v for k, v in bundled.items() if k != "decoder"}
    return replace(cfg.filled(settings, given), decoder=str(bundled.get("decoder", "beam+lm")))


_LLM_CACHE: dict[str, Any] = {}


def make_decoder(
    cfg: DecoderConfig,
    charset: Any,
    model: Any = None,
    given: frozenset[str] | set[str] = frozenset(),
    lm_unused_ok: bool = False,
) -> Any:
    """The decoder ``cfg`` describes (``None`` = greedy), ``auto`` resolved for ``model`` (:func:`resolve`).

    An LM that the decoder would not use is an error unless ``lm_unused_ok`` (several decoders share the
    settings)."""
    cfg = resolve(cfg, model, given)
    name = cfg.decoder
    head, *parts = name.split("+")
    if head not in ("greedy", "beam", "rescore") or any(p not in LM_PARTS for p in parts):
        raise ConfigError(f"unknown decoder {name!r}: {DECODERS_HELP}")
    have = {"char": cfg.lm, "word": cfg.word_lm, "neural": cfg.neural_lm}
    if head == "greedy":
        if parts:
            raise ConfigError(f"decoder {name!r}: language models need a beam search (beam+...)")
        if any(have.values()) and not lm_unused_ok:
            raise ConfigError(
                "--lm/--word-lm/--neural-lm need --decoder beam+lm (or beam+char, beam+word, ...)"
            )
        return None
    if "lm" in parts:
        use = {k for k, v in have.items() if v}
        if not use:
            raise ConfigError(f"decoder {name!r} needs a language model: --lm, --word-lm and/or --neural-lm")
    else:
        use = set(parts)
        missing = [p for p in use if not have[p]]
        if missing:
            opt = {"char": "--lm", "word": "--word-lm", "neural": "--neural-lm"}
            raise ConfigError(f"decoder {name!r} needs {', '.join(opt[m] for m in missing)}")
    unused = [k for k, v in have.items() if v and k not in use]
    if unused and not lm_unused_ok:
        raise ConfigError(
            f"decoder {name!r} does not use the {', '.join(unused)} LM given; name it (e.g. beam+char+word) "
            "or use beam+lm for every LM given"
        )
    from htrlab.decoding.beam import BeamConfig, BeamDecoder

    beam_cfg = BeamConfig(
        beam_size=cfg.beam_size,
        token_beam=cfg.token_beam,
        beam_threshold=cfg.beam_threshold,
        lm_weight=cfg.lm_weight if "char" in use else 0.0,
        word_score=cfg.word_score if use else 0.0,
        word_lm_weight=cfg.word_lm_weight if "word" in use else 0.0,
        neural_lm_weight=cfg.neural_lm_weight if "neural" in use else 0.0,
    )
    word_lm = neural_lm = None
    if "word" in use:
        from htrlab.lm.word import WordNgram

        word_lm = WordNgram(str(cfg.word_lm), oov_score=cfg.oov_score)
    if "neural" in use:
        from htrlab.lm.neural import CharLSTMLM

        neural_lm = CharLSTMLM.load(str(cfg.neural_lm))
    beam = BeamDecoder(charset, beam_cfg, cfg.lm if "char" in use else None, word_lm, neural_lm)
    if head == "beam":
        return beam
    from htrlab.decoding.rescore import CausalLMScorer, RescoreConfig, RescoreDecoder

    if cfg.rescore_lm not in _LLM_CACHE:
        _LLM_CACHE[cfg.rescore_lm] = CausalLMScorer(cfg.rescore_lm)
    rcfg = RescoreConfig(nbest=cfg.nbest, rescore_weight=cfg.rescore_weight, length_bonus=cfg.length_bonus)
    return RescoreDecoder(beam, _LLM_CACHE[cfg.rescore_lm], rcfg)


__all__ = ["DECODERS_HELP", "DecoderConfig", "make_decoder", "read_decoding_file", "resolve"]
