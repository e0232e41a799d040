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


DECODER_HELP = (
    "auto (default): for the bundled default model, beam search with its bundled character LM at the settings "
    "tuned on Hooker val (docs/RESULTS.md), for other models greedy, or beam+lm when an LM is given; "
    "greedy (best path); beam (CTC prefix beam search); beam+LMS: beam search fused with language models, "
    "LMS one or more of char (--lm), word (--word-lm), neural (--neural-lm) joined by '+', or lm for every one "
    "given (beam+lm, beam+char+word, ...); rescore or rescore+LMS: N-best of that beam search rescored by a "
    "causal LLM (--rescore-lm)"
)
_LM_PARTS = ("lm", "char", "word", "neural")
_DEFAULTS: dict[str, Any] = {
    "decoder": "auto",
    "lm": None,
    "lm_weight": 0.5,
    "word_lm": None,
    "word_lm_weight": 0.5,
    "oov_score": -6.0,
    "neural_lm": None,
    "neural_lm_weight": 0.5,
    "word_score": 0.0,
    "beam_size": 16,
    "token_beam": 0,
    "rescore_lm": "smollm2",
    "rescore_weight": 0.3,
    "length_bonus": 0.5,
    "nbest": 8,
}


def add_decoder_options(p: Any) -> None:
    """``--decoder NAME`` and its settings (shared by evaluate and recognize)."""
    p.add_argument("--decoder", default=_DEFAULTS["decoder"], help=DECODER_HELP)
    add_beam_options(p)


_FLOAT_OPTIONS = (  # (option, help): numeric decoder settings, their defaults in _DEFAULTS
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


def _given(args: Any, key: str) -> bool:
    return key in getattr(args, "_given", ())


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
        default=_DEFAULTS["rescore_lm"],
        help="causal LM for rescore: smollm2 or a model dir",
    )
    for kind, options in ((float, _FLOAT_OPTIONS), (int, _INT_OPTIONS)):
        for opt, text in options:
            dest = opt[2:].replace("-", "_")
            p.add_argument(opt, type=kind, action=_Given, default=_DEFAULTS[dest], help=text)
    p.add_argument(
        "--decoding",
        help="JSON of tuned settings (from `htrlab lm tune`); its values replace the defaults of these options",
    )


_LLM_CACHE: dict[str, Any] = {}


def apply_decoding_file(args: Any) -> None:
    """Fill decoder options from ``--decoding FILE`` (keys are option names with underscores); options given
    on the command line win."""
    import json

    from htrlab.errors import ConfigError

    path = getattr(args, "decoding", None)
    if not path:
        return
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--decoding {path}: cannot read JSON: {exc}") from exc
    settings = doc.get("settings", doc)
    for k, v in settings.items():
        if (
            hasattr(args, k)
            and not _given(args, k)
            and (k not in _DEFAULTS or getattr(args, k) == _DEFAULTS[k])
        ):
            setattr(args, k, v)


def _auto_decoder(args: Any) -> str:
    """What ``--decoder auto`` means for this model and these options; for the default model its bundled
    settings fill the options left at their defaults."""
    from htrlab.bundled import default_decoding, is_default_model

    spec = getattr(args, "model", None) or getattr(args, "checkpoint", None)
    bundled = default_decoding() if is_default_model(spec) else None
    if bundled is None:
        return "beam+lm" if args.lm or args.word_lm or args.neural_lm else "greedy"
    if args.word_lm or args.neural_lm:  # the user's LMs, not the bundled settings
        return "beam+lm"
    for k, v in bundled.items():
        if (
            k != "decoder"
            and hasattr(args, k)
            and not _given(args, k)
            and getattr(args, k) == _DEFAULTS.get(k)
        ):
            setattr(args, k, v)
    return str(bundled.get("decoder", "beam+lm"))


def make_decoder(args: Any, charset: Any, lm_unused_ok: bool = False, name: str | None = None) -> Any:
    """The decoder ``name`` (default ``args.decoder``) with the options' settings; ``None`` = greedy.

    An LM option that the decoder would not use is an error unless ``lm_unused_ok`` (several decoders share
    the options)."""
    from htrlab.errors import ConfigError

    if not getattr(args, "_decoding_applied", False):
        apply_decoding_file(args)
        args._decoding_applied = True
    name = name or args.decoder
    if name == "auto":
        name = _auto_decoder(args)
    head, *parts = name.split("+")
    if head not in ("greedy", "beam", "rescore") or any(p not in _LM_PARTS for p in parts):
        raise ConfigError(f"unknown decoder {name!r}: {DECODER_HELP}")
    given = {"char": args.lm, "word": args.word_lm, "neural": args.neural_lm}
    if head == "greedy":
        if parts:
            raise ConfigError(f"decoder {name!r}: language models need a beam search (beam+...)")
        if any(given.values()) and not lm_unused_ok:
            raise ConfigError(
                "--lm/--word-lm/--neural-lm need --decoder beam+lm (or beam+char, beam+word, ...)"
            )
        return None
    if "lm" in parts:
        use = {k for k, v in given.items() if v}
        if not use:
            raise ConfigError(f"decoder {name!r} needs a language model: --lm, --word-lm and/or --neural-lm")
    else:
        use = set(parts)
        missing = [p for p in use if not given[p]]
        if missing:
            opt = {"char": "--lm", "word": "--word-lm", "neural": "--neural-lm"}
            raise ConfigError(f"decoder {name!r} needs {', '.join(opt[m] for m in missing)}")
    unused = [k for k, v in given.items() if v and k not in use]
    if unused and not lm_unused_ok:
        raise ConfigError(
            f"decoder {name!r} does not use the {', '.join(unused)} LM given; name it (e.g. beam+char+word) "
            "or use beam+lm for every LM given"
        )
    from htrlab.decoding.beam import BeamConfig, BeamDecoder

    cfg = BeamConfig(
        beam_size=args.beam_size,
        token_beam=getattr(args, "token_beam", 0),
        lm_weight=args.lm_weight if "char" in use else 0.0,
        word_score=args.word_score if use else 0.0,
        word_lm_weight=args.word_lm_weight if "word" in use else 0.0,
        neural_lm_weight=args.neural_lm_weight if "neural" in use else 0.0,
    )
    word_lm = neural_lm = None
    if "word" in use:
        from htrlab.lm.word import WordNgram

        word_lm = WordNgram(args.word_lm, oov_log10=args.oov_score)
    if "neural" in use:
        from htrlab.lm.neural import CharLSTMLM

        neural_lm = CharLSTMLM.load(args.neural_lm)
    beam = BeamDecoder(charset, cfg, args.lm if "char" in use else None, word_lm, neural_lm)
    if head == "beam":
        return beam
    from htrlab.decoding.rescore import CausalLMScorer, RescoreConfig, RescoreDecoder

    if args.rescore_lm not in _LLM_CACHE:
        _LLM_CACHE[args.rescore_lm] = CausalLMScorer(args.rescore_lm)
    rcfg = RescoreConfig(nbest=args.nbest, weight=args.rescore_weight, length_bonus=args.length_bonus)
    return RescoreDecoder(beam, _LLM_CACHE[args.rescore_lm], rcfg)


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
    from htrlab.errors import ConfigError, DataError
    from htrlab.segment.learned import load_detector
    from htrlab.segment.lines import SegmentConfig

    if args.segmenter == "learned":
        try:
            load_detector(args.line_detector)
        except DataError as exc:
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


def input_pages(paths: list[Path], on_error: str) -> tuple[list[Any], dict[Any, str]]:
    """The pages to read from the inputs given (images, folders of them, multi-page TIFFs, PDFs), in order, and
    the inputs that could not be opened (under ``--on-error skip``; else the first such raises ``DataError``)."""
    from htrlab.data.documents import PageSource, expand_inputs, page_sources
    from htrlab.errors import DataError

    sources: list[PageSource] = []
    failed: dict[PageSource, str] = {}
    files: list[Path] = []
    ours: list[Path] = []
    for p in paths:
        try:
            files += expand_inputs([p], ours)
        except DataError as exc:
            if on_error == "error":
                raise
            sources.append(PageSource(p))
            failed[sources[-1]] = str(exc)
    seen: set[Path] = set()
    for f in files:
        try:
            key = f.resolve()
        except (OSError, RuntimeError):  # a symbolic link loop (RuntimeError before Python 3.13)
            key = f.absolute()
        if key in seen:  # named twice (a folder and a file in it, say): read once
            continue
        seen.add(key)
        try:
            sources += page_sources(f)
        except DataError as exc:
            if on_error == "error":
                raise
            sources.append(PageSource(f))
            failed[sources[-1]] = str(exc)
    if ours:
        print(
            f"note: left out {len(ours)} image(s) htrlab wrote itself in the folders given (lines drawn by "
            f"--show, pages saved beside their XML, sample grids), e.g. {ours[0]}; name a file to read it",
            file=sys.stderr,
        )
    return sources, failed


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
    """PAGE-XML or ALTO for one page; a page with no image file of its own (a PDF page, a TIFF page) is saved
    beside it as PNG, the image the XML's coordinates refer to."""
    from PIL import Image

    from htrlab.data.images import save_output_image
    from htrlab.segment.export import write_alto, write_page_xml

    target.parent.mkdir(parents=True, exist_ok=True)
    image = src.path
    if not src.has_image_file:
        image = target.with_suffix(".png")
        save_output_image(Image.fromarray(gray), image, "page image for its XML")
    rel = os.path.relpath(image.resolve(), target.parent.resolve())
    return (write_page_xml if fmt == "page-xml" else write_alto)(layout, rel, target)
