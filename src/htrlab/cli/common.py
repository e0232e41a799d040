"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from htrlab.decoding.config import DECODERS_HELP as DECODER_HELP
from htrlab.decoding.config import DecoderConfig
from htrlab.errors import ConfigError, DataError


def check_writable(path: str | Path | None, option: str, folder: bool = False) -> None:
    """Fail before the work, not after it, when ``option``'s file (or ``folder``) could not be written.

    Raises:
        ConfigError: naming the option, the path and the reason.
    """
    if not path:
        return
    p = Path(path)
    where = p if folder else p.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {p}: cannot create the folder {where} ({exc.strerror or exc})") from exc
    if not folder and p.is_dir():
        raise ConfigError(f"{option} {p} is a folder: give a file name")
    if not os.access(where, os.W_OK):
        raise ConfigError(f"{option} {p}: the folder {where} is not writable")


def write_output(text: str, out: str | None) -> None:
    """Results go to stdout, or to ``-o FILE``; if the file cannot be written they go to stdout all the same
    (a finished evaluation is never thrown away) and the error names the file."""
    text = text if text.endswith("\n") else text + "\n"
    if not out:
        sys.stdout.write(text)
        return
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        sys.stdout.write(text)
        raise DataError(
            f"cannot write {out} ({exc.strerror or exc}); the results were written to stdout instead"
        ) from exc


@contextlib.contextmanager
def output_stream(out: str | None) -> Iterator[TextIO]:
    """Where results are written as they come: stdout, or ``-o FILE`` (what was written stays if the run
    stops part-way)."""
    if not out:
        yield sys.stdout
        sys.stdout.flush()
        return
    check_writable(out, "-o")
    try:
        fh = open(out, "w", encoding="utf-8")  # noqa: SIM115 (opened here to name a failure before the work)
    except OSError as exc:
        raise ConfigError(f"-o {out}: cannot write it ({exc.strerror or exc})") from exc
    with fh:
        yield fh


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def add_on_error(p: Any) -> None:
    p.add_argument(
        "--on-error",
        choices=["error", "skip"],
        default="error",
        help="stop at the first bad sample (default) or skip bad samples and report how many",
    )


def line_crop_choice(allowed: tuple[str, ...]) -> Any:
    """An argparse type for ``--line-crop``: the canonical style name, the former names accepted."""
    from htrlab.data.linecrop import crop_style

    def parse(name: str) -> str:
        try:
            return crop_style(name, allowed)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_line_crop(p: Any) -> None:
    from htrlab.data.linecrop import LINE_CROPS

    p.add_argument(
        "--line-crop",
        type=line_crop_choice(LINE_CROPS),
        metavar="{band,outline,box,ink}",
        default="band",
        help="how lines of PAGE-XML/ALTO pages are cut out: band = around the baseline, straightened (default; "
        "htrlab's own cut); outline = the line's polygon masked to paper and cropped to its box (as "
        "Transkribus/eScriptorium export lines); box = the outline's box unmasked; ink = a tight box of the "
        "line's own ink",
    )


def add_engine_option(p: Any) -> None:
    p.add_argument(
        "--engine",
        choices=["auto", "torch", "onnx", "openvino"],
        default="auto",
        help="auto: onnxruntime for .onnx files, PyTorch otherwise; openvino: an .onnx file run by OpenVINO "
        "(pip install openvino)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16: bfloat16 arithmetic (engines torch and openvino), faster on CPUs with AMX or AVX512-BF16, "
        "slightly different results",
    )


def add_decoder_options(p: Any) -> None:
    """``--decoder NAME`` and its settings (shared by evaluate and recognize)."""
    p.add_argument("--decoder", default=DecoderConfig.decoder, help=DECODER_HELP)
    add_beam_options(p)


_FLOAT_OPTIONS = (  # (option, help): numeric decoder settings, their defaults DecoderConfig's
    ("--lm-weight", "weight of the character LM's log10 p"),
    ("--word-lm-weight", "weight of the word LM's log10 p"),
    ("--oov-score", "word LM log10 score of an unknown word"),
    ("--neural-lm-weight", "weight of the neural LM's log10 p"),
    ("--word-score", "beta: score added per word"),
    ("--rescore-weight", "weight of the LLM's log10 p"),
    ("--length-bonus", "rescoring score added per character"),
)
_INT_OPTIONS = (
    ("--beam-size", "hypotheses kept per frame"),
    (
        "--token-beam",
        "characters tried per frame, most likely first (0 = all; 10-15 speeds up word/neural LMs)",
    ),
    ("--nbest", "readings per line for rescore"),
)


class _Given(argparse.Action):
    """Stores an option's value and notes that the user gave it, so that settings from a file or the bundled
    ones fill only the options left out (an option given at its default value still wins)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace._given = {*getattr(namespace, "_given", ()), self.dest}


def add_beam_options(p: Any) -> None:
    """Beam search, LM and rescoring settings."""
    p.add_argument("--lm", action=_Given, help="character n-gram LM (ARPA from `htrlab lm build`)")
    p.add_argument(
        "--word-lm", help="word n-gram LM: 'cmu' (CMU US-English 3-gram in pocketsphinx) or an ARPA file"
    )
    p.add_argument("--neural-lm", help="neural character LM (`htrlab lm train-neural`)")
    p.add_argument(
        "--rescore-lm",
        action=_Given,
        default=DecoderConfig.rescore_lm,
        help="causal LM for rescore: smollm2 or a model dir",
    )
    for kind, options in ((float, _FLOAT_OPTIONS), (int, _INT_OPTIONS)):
        for opt, text in options:
            dest = opt[2:].replace("-", "_")
            p.add_argument(opt, type=kind, action=_Given, default=getattr(DecoderConfig, dest), help=text)
    p.add_argument(
        "--decoding",
        help="JSON of tuned settings (from `htrlab lm tune`); its values replace the defaults of these options",
    )


def decoder_config(args: Any) -> DecoderConfig:
    """The decoder settings of parsed options, ``--decoding FILE`` filling the ones the user left out (options
    given on the command line win, even at their default value); a command's missing options keep
    :class:`DecoderConfig`'s defaults. ``args`` is not changed."""
    from htrlab.decoding.config import read_decoding_file

    cfg = DecoderConfig(**{k: getattr(args, k) for k in DecoderConfig.names() if hasattr(args, k)})
    path = getattr(args, "decoding", None)
    return cfg.filled(read_decoding_file(path), given_options(args)) if path else cfg


def given_options(args: Any) -> set[str]:
    """The decoder settings the user named on the command line."""
    return set(getattr(args, "_given", set()))


def make_decoder(
    args: Any, charset: Any, lm_unused_ok: bool = False, name: str | None = None
) -> tuple[Any, DecoderConfig]:
    """The decoder ``name`` (default ``args.decoder``) with the options' settings, and those settings with
    ``auto`` made concrete (for the default model: its bundled LM and tuned settings in the options left out);
    the decoder is ``None`` for greedy. See :mod:`htrlab.decoding.config`."""
    from dataclasses import replace

    from htrlab.decoding.config import make_decoder as build
    from htrlab.decoding.config import resolve

    cfg = decoder_config(args)
    if name:
        cfg = replace(cfg, decoder=name)
    model = getattr(args, "model", None) or getattr(args, "checkpoint", None)
    resolved = resolve(cfg, model, given_options(args))
    return build(resolved, charset, model, given_options(args), lm_unused_ok), resolved


def add_segmenter_options(p: Any) -> None:
    p.add_argument(
        "--segmenter",
        choices=["learned", "classical"],
        default="learned",
        help="how page lines are found: learned (the bundled line detector, or --line-detector) or classical "
        "(ink smearing, no trained model); docs/RESULTS.md compares them",
    )
    p.add_argument("--line-detector", help="line detector weights (.safetensors) for --segmenter learned")


def segment_config(args: Any) -> Any:
    """The ``SegmentConfig`` the segmenter options ask for; the line detector is loaded here, so that a bad
    ``--line-detector`` is reported once, before any image is read."""
    from htrlab.errors import CheckpointError, ConfigError, DataError
    from htrlab.segment.learned import load_detector
    from htrlab.segment.lines import SegmentConfig

    if args.segmenter == "learned":
        try:
            load_detector(args.line_detector)
        except (DataError, CheckpointError) as exc:
            raise ConfigError(f"--line-detector: {exc}") from exc
    return SegmentConfig(method=args.segmenter, detector=args.line_detector)


def add_input_options(p: Any) -> None:
    p.add_argument(
        "--pdf-dpi",
        type=float,
        default=None,
        help="resolution PDF pages are rendered at (default: a scanned page's own resolution, else 300)",
    )


def add_orientation_option(p: Any, help: str) -> None:
    """``--orientation auto|0|90|180|270`` (``htrlab.segment.orient``), as ``recognize`` and ``segment`` take it."""
    p.add_argument("--orientation", choices=["auto", "0", "90", "180", "270"], default="auto", help=help)


def page_progress(sources: list[Any]) -> Any:
    """The pages, with a progress bar on a terminal when there are several (a folder, a long PDF); write messages
    meanwhile with ``tqdm.write``."""
    from tqdm import tqdm

    return tqdm(sources, unit="page", disable=None if len(sources) > 1 else True, leave=False)


def check_show(show: str | None, several: bool) -> None:
    """``--show``'s folder (or the folder of its file) can be written: checked before the work."""
    if show:
        check_writable(show_path(show, "x", several).parent, "--show", folder=True)


def show_path(show: str, stem: str, several: bool) -> Path:
    """Where ``--show`` draws a page's lines: the file given, or ``SHOW/STEM.lines.png`` for several pages or a
    folder."""
    target = Path(show)
    if several or target.is_dir() or not target.suffix:
        return target / f"{stem}.lines.png"
    return target


def xml_targets(sources: list[Any], folder: Path, suffix: str = ".xml") -> dict[Any, Path]:
    """One output file per page, ``FOLDER/STEM.xml``; two inputs that would write the same file are an error
    (a folder holding ``a.png`` and ``a.jpg``, say), reported before anything is read."""
    from htrlab.errors import ConfigError

    targets: dict[Any, Path] = {}
    owner: dict[Path, Any] = {}
    for src in sources:
        target = folder / f"{src.stem}{suffix}"
        if target in owner and owner[target] != src:
            raise ConfigError(f"{owner[target]} and {src} would both be written to {target}: rename one")
        owner[target] = src
        targets[src] = target
    return targets


def write_layout_xml(fmt: str, src: Any, layout: Any, gray: Any, target: Path) -> Path:
    """PAGE-XML or ALTO for one page (:func:`htrlab.segment.export.write_layout_file`)."""
    from htrlab.segment.export import write_layout_file

    return write_layout_file(fmt, layout, gray, target, src.path if src.has_image_file else None)
