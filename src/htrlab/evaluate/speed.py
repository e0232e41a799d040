"""Speed benchmark: sentences (lines) per second, tokens (characters) per second, latency and memory.

Timing covers the model's forward pass and greedy decoding on preprocessed lines; preprocessing is timed
separately. Each configuration gets a warm-up pass on a few lines (not timed), then ``repeats`` timed passes
over all lines; the median pass is reported, and the first pass on its own (new batch shapes). Latency is
measured line by line at batch size 1. The arithmetic of one line (GFLOPs, counted by PyTorch) tells how much
of a speed difference is the models' work and how much the engines' use of the CPU.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from htrlab.data.images import load_gray
from htrlab.data.preprocess import PreprocessConfig, preprocess
from htrlab.models.base import is_seq2seq
from htrlab.models.checkpoint import make_meta
from htrlab.read.engines import Engine, load_engine, module_engine
from htrlab.read.reader import Reader
from htrlab.text.charset import Charset


@dataclass
class SpeedRow:
    model: str
    engine: str
    precision: str
    decoder: str
    batch_size: int
    threads: int
    params: int
    file_mb: float | None
    lines: int
    sentences_per_s: float
    tokens_per_s: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    preprocess_ms_per_line: float
    peak_rss_mb: float
    # the first timed pass alone: batch shapes not seen before (engines that prepare kernels per input shape,
    # such as OpenVINO, pay for that here; the median is of passes over shapes seen)
    first_pass_sentences_per_s: float = 0.0
    # the most lines one call of the engine ran (0 = whole batches; htrlab.read.engines.ONNX_LINES_PER_RUN)
    lines_per_run: int = 0
    # arithmetic of one line of the median width (a multiply-add counts 2), where the engine has a PyTorch
    # module to count on (torch rows; an ONNX file computes what its checkpoint's module computes)
    gflops_per_line: float | None = None


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        import onnxruntime

        facts["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        import openvino

        facts["openvino"] = openvino.__version__
    except ImportError:
        pass
    try:  # the bfloat16 instructions that --precision bf16 uses where present
        flags = set(
            next(
                (
                    ln.split(":", 1)[1].split()
                    for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("flags")
                ),
                [],
            )
        )
        facts["cpu_bf16"] = ",".join(sorted(flags & {"amx_bf16", "avx512_bf16"})) or "none"
    except OSError:
        pass
    return facts


def random_engine(name: str, tokens_per_line: int = 32, precision: str = "fp32") -> Engine:
    """A registered architecture with random weights (speed only), with a 95-character charset.

    An autoregressive model with random weights would never stop before its maximum length; it is made to
    generate ``tokens_per_line`` tokens per line (about a real line's length), so its speed is comparable.
    """
    from htrlab.models.registry import build_model

    charset = Charset([chr(c) for c in range(32, 127)])
    model = build_model(name, len(charset)).eval()
    if is_seq2seq(model):
        model.cfg.max_length = tokens_per_line  # type: ignore[union-attr]
    height = int(model.cfg.input_height)  # type: ignore[union-attr,arg-type]
    pre = PreprocessConfig(height=height, resize="square" if is_seq2seq(model) else "height")

    return module_engine(model, Path(name), charset, pre, make_meta(model, name, charset, pre), precision)


def resolve_models(
    specs: Sequence[str],
    engines: Sequence[str],
    threads: int,
    tokens_per_line: int = 32,
    precisions: Sequence[str] = ("fp32",),
) -> list[tuple[str, Engine]]:
    """``default`` (bundled model), checkpoint/ONNX paths or registered names -> engines to time, one per
    engine and precision that applies (onnxruntime: fp32 only; registered names: PyTorch only).

    A checkpoint with ``onnx`` or ``openvino`` among ``engines`` is also exported to a temporary ONNX file and
    timed there; an ONNX file is timed by the ONNX engines among ``engines`` (onnxruntime if there are none).
    """
    from htrlab.bundled import default_checkpoint
    from htrlab.models.registry import model_names

    onnx_engines = [e for e in engines if e in ("onnx", "openvino")]
    out: list[tuple[str, Engine]] = []

    def add(label: str, path: Path, engine: str) -> None:
        for prec in precisions:
            if not (engine == "onnx" and prec == "bf16"):
                out.append((label, load_engine(path, engine, threads, prec)))

    for spec in specs:
        if spec == "default":  # the bundled weights; their ONNX export is timed by the ONNX engines
            if "torch" in engines:
                add(spec, default_checkpoint("torch"), "torch")
            for engine in onnx_engines:
                add(spec, default_checkpoint(), engine)
            continue
        if Path(spec).exists():
            path = Path(spec)
        elif spec in model_names():
            for prec in precisions:
                out.append((f"{spec} (random init)", random_engine(spec, tokens_per_line, prec)))
            continue
        else:
            from htrlab.errors import ModelError

            raise ModelError(
                f"'{spec}' is neither a file, 'default', nor a registered model ({', '.join(model_names())})"
            )
        if path.suffix == ".onnx":
            for engine in onnx_engines or ["onnx"]:
                add(spec, path, engine)
            continue
        if "torch" in engines:
            add(spec, path, "torch")
        if onnx_engines:
            from htrlab.models.checkpoint import load_checkpoint
            from htrlab.models.onnx_export import export_onnx

            onnx_path = Path(tempfile.mkdtemp(prefix="htrlab-bench-")) / (path.stem + ".onnx")
            export_onnx(load_checkpoint(path), onnx_path)
            for engine in onnx_engines:
                add(spec, onnx_path, engine)
    return out


def _run(engine: Engine, images: Sequence[np.ndarray], batch_size: int) -> int:
    """One pass over all lines (width-bucketed batches); returns the number of decoded characters."""
    return sum(len(d.text) for d in Reader.of(engine, batch_size=batch_size).read_prepared(images))


def gflops_per_line(engine: Engine, image: np.ndarray) -> float | None:
    """Floating-point operations (GFLOPs) of reading one preprocessed line: a CTC model's forward pass, or an
    autoregressive model's generation (its encoder and every decoding step); None without a PyTorch module."""
    from torch.utils.flop_counter import FlopCounterMode

    from htrlab.data.batching import collate

    module = engine.module
    if module is None:
        return None
    batch = collate([image], [""], [""])
    with FlopCounterMode(display=False) as counter:  # (its module hooks need autograd on: no no_grad here)
        if is_seq2seq(module):
            module.generate(batch.images, engine.charset)
        else:
            module(batch.images, batch.widths)
    return round(counter.get_total_flops() / 1e9, 3)


def benchmark_engine(
    label: str,
    engine: Engine,
    gray_lines: Sequence[np.ndarray],
    batch_sizes: Sequence[int],
    threads: int,
    repeats: int = 3,
    latency_lines: int = 50,
) -> list[SpeedRow]:
    """Time ``engine`` on grayscale line images at each batch size."""
    t0 = time.perf_counter()
    images = [preprocess(g, engine.preprocess) for g in gray_lines]
    pre_ms = 1000 * (time.perf_counter() - t0) / max(1, len(images))
    size = engine.path.stat().st_size / 1e6 if engine.path.is_file() else None
    by_width = sorted(images, key=lambda im: im.shape[1])
    flops = gflops_per_line(engine, by_width[len(by_width) // 2]) if images else None
    rows = []
    for bs in batch_sizes:
        _run(engine, images[: 2 * bs], bs)  # warm-up
        times, chars = [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            chars = _run(engine, images, bs)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        p50 = p95 = None
        if bs == 1:
            lat = []
            for im in images[:latency_lines]:
                t = time.perf_counter()
                _run(engine, [im], 1)
                lat.append(1000 * (time.perf_counter() - t))
            p50, p95 = float(np.percentile(lat, 50)), float(np.percentile(lat, 95))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append(
            SpeedRow(
                label,
                engine.name,
                engine.precision,
                "greedy",
                bs,
                threads,
                engine.params,
                round(size, 2) if size else None,
                len(images),
                round(len(images) / med, 2),
                round(chars / med, 1),
                None if p50 is None else round(p50, 2),
                None if p95 is None else round(p95, 2),
                round(pre_ms, 3),
                round(rss, 1),
                round(len(images) / times[0], 2),
                engine.lines_per_run,
                flops,
            )
        )
    return rows


def load_lines(
    data: str | None, images_dir: str | None, split: str, max_lines: int
) -> tuple[list[np.ndarray], list[str]]:
    """Grayscale line images (and their transcriptions when known) from a dataset split or an image folder."""
    from htrlab.data.dataset import load_split_images
    from htrlab.data.readers.common import IMAGE_SUFFIXES
    from htrlab.errors import ConfigError

    if bool(data) == bool(images_dir):
        raise ConfigError("give exactly one of --data DATASET or --images DIR")
    if data:
        return load_split_images(data, split, max_lines)
    files = sorted(p for p in Path(images_dir or ".").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [load_gray(p) for p in files[: max_lines or None]], []


def rows_to_markdown(rows: Sequence[SpeedRow]) -> str:
    head = [
        "model",
        "engine",
        "precision",
        "batch",
        "lines/run",
        "params",
        "GFLOPs/line",
        "MB",
        "sentences/s",
        "first pass",
        "tokens/s",
        "p50 ms",
        "p95 ms",
        "peak RSS MB",
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [
            r.model,
            r.engine,
            r.precision,
            r.batch_size,
            r.lines_per_run or "batch",
            f"{r.params:,}",
            r.gflops_per_line or "-",
            r.file_mb or "-",
            r.sentences_per_s,
            r.first_pass_sentences_per_s,
            r.tokens_per_s,
            r.latency_p50_ms or "-",
            r.latency_p95_ms or "-",
            r.peak_rss_mb,
        ]
        out.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(out)


def as_dicts(rows: Sequence[SpeedRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
