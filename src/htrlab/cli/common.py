"""Helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_output(text: str, out: str | None) -> None:
    """Results go to stdout, or to ``-o FILE``."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def add_on_error(p: Any) -> None:
    p.add_argument(
        "--on-error",
        choices=["error", "skip"],
        default="error",
        help="stop at the first bad sample (default) or skip bad samples and report how many",
    )


def add_decoder_options(p: Any) -> None:
    """``--decoder greedy|beam|beam+lm`` and its settings (shared by evaluate and recognize)."""
    p.add_argument(
        "--decoder",
        choices=["greedy", "beam", "beam+lm"],
        default="greedy",
        help="CTC decoding: greedy (best path), beam (prefix beam search), beam+lm (with --lm)",
    )
    add_beam_options(p)


def add_beam_options(p: Any) -> None:
    """Beam search and LM settings (``--lm``, ``--lm-weight``, ``--word-score``, ``--beam-size``)."""
    p.add_argument("--lm", help="character LM (ARPA from `htrlab lm build`) for the beam+lm decoder")
    p.add_argument("--lm-weight", type=float, default=0.5, help="alpha: weight of the LM's log10 probability")
    p.add_argument("--word-score", type=float, default=0.0, help="beta: score added per word")
    p.add_argument("--beam-size", type=int, default=16)


def make_decoder(args: Any, charset: Any, lm_unused_ok: bool = False) -> Any:
    """The decoder the options ask for (``None`` = greedy); an --lm that the decoder would not use is an error
    unless ``lm_unused_ok`` (several decoders share the options)."""
    from htrlab.errors import ConfigError

    if args.decoder == "greedy":
        if args.lm and not lm_unused_ok:
            raise ConfigError("--lm needs --decoder beam+lm")
        return None
    from htrlab.decoding.beam import BeamConfig, BeamDecoder

    if args.decoder == "beam+lm" and not args.lm:
        raise ConfigError("--decoder beam+lm needs --lm LM.arpa (build one with `htrlab lm build`)")
    if args.decoder == "beam" and args.lm and not lm_unused_ok:
        raise ConfigError("--lm is used by --decoder beam+lm; --decoder beam searches without an LM")
    cfg = BeamConfig(
        beam_size=args.beam_size,
        lm_weight=args.lm_weight if args.decoder == "beam+lm" else 0.0,
        word_score=args.word_score if args.decoder == "beam+lm" else 0.0,
    )
    return BeamDecoder(charset, cfg, args.lm if args.decoder == "beam+lm" else None)
