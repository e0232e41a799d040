"""Inference engines: the PyTorch model of a checkpoint, or its ONNX export run by onnxruntime or OpenVINO.

All take preprocessed batches ``(N, 1, H, W)`` with widths ``(N,)`` and return CTC log-probabilities
``(N, T, C)`` with frame counts ``(N,)``, so decoding, evaluation and benchmarks treat them alike.

Precision: ``fp32`` everywhere, or ``bf16`` (bfloat16 arithmetic) for PyTorch (``torch.autocast``) and OpenVINO
(its inference precision hint). Both use the CPU's bfloat16 instructions (AMX or AVX512-BF16) where it has
them; OpenVINO falls back to fp32 on a CPU without them, and the engine reports the precision it really runs.
onnxruntime has no bfloat16 CPU kernels for these graphs, so it takes fp32 only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from htrlab.config import from_dict
from htrlab.data.preprocess import PreprocessConfig
from htrlab.errors import CheckpointError, ConfigError
from htrlab.models.checkpoint import META_KEY, CheckpointMeta, LoadedModel, load_checkpoint
from htrlab.text.charset import Charset

ENGINES = ("torch", "onnx", "openvino")
PRECISIONS = ("fp32", "bf16")


@dataclass
class Engine:
    """A loaded recognizer: how to call it and what it needs."""

    name: str
    path: Path
    charset: Charset
    preprocess: PreprocessConfig
    meta: CheckpointMeta
    params: int
    forward: Any  # (images, widths) -> (log_probs, lengths)
    module: Any = None  # the torch module, when there is one (autoregressive models decode through it)
    # () -> forwards that may run at the same time, one batch each (ONNX: one single-thread session per worker);
    # None where batches run one after another
    batch_workers: Any = None
    precision: str = "fp32"  # the arithmetic the engine really runs (see the module docstring)
    # the most lines one call runs (0 = a whole batch): larger batches are cut into runs of this size
    lines_per_run: int = 0

    def __call__(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.forward(images, widths)
        return out

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Where PyTorch runs the model (its forward, or an autoregressive model's generation): bfloat16
        autocast for ``precision="bf16"``."""
        if self.name == "torch" and self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield


def _check_precision(precision: str, engine: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})")
    if precision == "bf16" and engine == "onnx":
        raise ConfigError(
            "onnxruntime runs these models in fp32 only: for bf16 use --engine openvino (ONNX files) "
            "or --engine torch (checkpoints)"
        )


def torch_engine(path: str | Path, threads: int = 0, precision: str = "fp32") -> Engine:
    _check_precision(precision, "torch")
    if threads > 0:
        torch.set_num_threads(threads)
    return engine_of(load_checkpoint(path), precision)


def engine_of(loaded: LoadedModel, precision: str = "fp32") -> Engine:
    """The PyTorch engine of a checkpoint already loaded (its model is put in eval mode)."""
    return module_engine(loaded.model, loaded.path, loaded.charset, loaded.preprocess, loaded.meta, precision)


def module_engine(
    model: torch.nn.Module,
    path: Path,
    charset: Charset,
    preprocess: PreprocessConfig,
    meta: CheckpointMeta,
    precision: str = "fp32",
) -> Engine:
    """The PyTorch engine of a model in memory (put in eval mode)."""
    _check_precision(precision, "torch")
    model = model.eval()

    @torch.no_grad()
    def forward(images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = model(images, widths)
        return out

    params = sum(p.numel() for p in model.parameters())
    return Engine("torch", path, charset, preprocess, meta, params, forward, model, precision=precision)


MAX_BATCH_WORKERS = 8
# onnxruntime on a CPU reads this network's lines faster two at a time than in larger batches (2 cores, 300
# Hooker test lines, batch 32 cut into runs of 2 / 4 / 8 / none: 89.4 / 83.4 / 77.5 / 77.7 lines/s on 2 threads,
# 40.2 / 40.7 / 38.4 / 37.4 on 1; docs/RESULTS.md): the late 240- and 480-channel maps of a 32-line batch are tens
# of MB, far beyond the caches. Batch size still decides which lines are read together (by width).
ONNX_LINES_PER_RUN = 2


def onnx_engine(path: str | Path, threads: int = 0) -> Engine:
    """Load an ONNX file written by :func:`htrlab.models.onnx_export.export_onnx` (metadata included).

    One session with ``threads`` intra-op threads serves single batches (lowest latency). Reading many
    batches, :func:`htrlab.read.predict.emissions` runs them on several sessions at once instead
    (``batch_workers``, made on first use): up to ``threads`` sessions, each with ``threads // workers``
    threads. The convolutions of a 48-px line use two threads less well than two batches use one thread each
    (measured on 2 cores: +23 % lines/s at batch 1, +4 % at batch 32, docs/RESULTS.md); onnxruntime's ``run``
    releases the GIL.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} not found")

    def make_session(n_threads: int) -> Any:
        opts = ort.SessionOptions()
        if n_threads > 0:
            opts.intra_op_num_threads = n_threads
            opts.inter_op_num_threads = 1
        try:
            return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise CheckpointError(f"{path}: onnxruntime cannot load it: {exc}") from exc

    session = make_session(threads)
    meta, pre, params = _htrlab_metadata(path, session.get_modelmeta().custom_metadata_map)

    def forward_on(sess: Any) -> Any:
        def forward(images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            lp, lengths = sess.run(
                None, {"images": images.numpy().astype(np.float32), "widths": widths.numpy().astype(np.int64)}
            )
            return torch.from_numpy(lp), torch.from_numpy(lengths)

        return forward

    total = threads if threads > 0 else torch.get_num_threads()
    n_workers = min(total, MAX_BATCH_WORKERS)
    pool: list[Any] = []

    def batch_workers() -> list[Any]:
        if n_workers < 2:
            return []
        if not pool:
            pool.extend(forward_on(make_session(max(1, total // n_workers))) for _ in range(n_workers))
        return pool

    return Engine(
        "onnx",
        path,
        Charset(meta.charset),
        pre,
        meta,
        params,
        forward_on(session),
        None,
        batch_workers,
        lines_per_run=ONNX_LINES_PER_RUN,
    )


def _htrlab_metadata(path: Path, props: dict[str, str]) -> tuple[CheckpointMeta, PreprocessConfig, int]:
    """The checkpoint metadata, preprocessing and parameter count that `htrlab export` writes into a file."""
    raw = props.get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path} has no htrlab metadata: export it with `htrlab export`")
    try:
        meta = from_dict(CheckpointMeta, json.loads(raw), where="onnx metadata")
        pre = from_dict(PreprocessConfig, meta.preprocess)
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad htrlab metadata: {exc}") from exc
    return meta, pre, int(props.get("htrlab_params", "0"))


OPENVINO_WIDTH_STEP = 64


def openvino_engine(path: str | Path, threads: int = 0, precision: str = "fp32") -> Engine:
    """Run an ONNX file written by `htrlab export` with OpenVINO (``pip install openvino``) on the CPU.

    In fp32 it is about as fast as onnxruntime; its use is ``precision="bf16"``, which runs the convolutions
    in bfloat16 on CPUs that have AMX or AVX512-BF16 (docs/RESULTS.md has the speed and the CER it costs).
    """
    _check_precision(precision, "openvino")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} not found")
    try:
        import openvino as ov
    except ImportError as exc:
        raise ConfigError("--engine openvino needs OpenVINO: pip install openvino") from exc
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for files that are not ONNX
        raise CheckpointError(f"{path}: not a readable ONNX file: {exc}") from exc
    meta, pre, params = _htrlab_metadata(path, {p.key: p.value for p in proto.metadata_props})
    core = ov.Core()
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    try:
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
        raise CheckpointError(f"{path}: OpenVINO cannot compile it: {exc}") from exc
    # a CPU without bfloat16 instructions runs f32 whatever the hint says: report what runs
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    used = str(hint.get_type_name() if hasattr(hint, "get_type_name") else hint).lower()
    request = compiled.create_infer_request()
    out_lp, out_len = compiled.output("log_probs"), compiled.output("lengths")

    def forward(images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # OpenVINO prepares its kernels for each new input shape (tens of ms; measured in docs/RESULTS.md):
        # batches padded on the right to a multiple of OPENVINO_WIDTH_STEP px repeat shapes far more often.
        # Frame counts still come from the true widths (the model's output_length), so the padding's frames
        # are not decoded; only the widest line of a batch may keep a last frame that the network's rounding
        # drops without the padding (CER within 0.03 points of onnxruntime on Hooker val/test).
        pad = -images.shape[-1] % OPENVINO_WIDTH_STEP
        if pad:
            images = torch.nn.functional.pad(images, (0, pad))
        res = request.infer(
            {"images": images.numpy().astype(np.float32), "widths": widths.numpy().astype(np.int64)}
        )
        return torch.from_numpy(np.array(res[out_lp], np.float32)), torch.from_numpy(
            np.array(res[out_len], np.int64)
        )

    return Engine(
        "openvino",
        path,
        Charset(meta.charset),
        pre,
        meta,
        params,
        forward,
        precision="bf16" if used in ("bf16", "bfloat16") else "fp32",
    )


def load_engine(path: str | Path, engine: str = "auto", threads: int = 0, precision: str = "fp32") -> Engine:
    """``engine="auto"`` picks onnxruntime for ``.onnx`` files and PyTorch otherwise; ``path="default"`` is
    the bundled model (its ONNX file, or its weights for ``engine="torch"``). ``precision`` is ``fp32`` or
    ``bf16`` (PyTorch and OpenVINO; see the module docstring)."""
    if str(path) == "default":
        from htrlab.bundled import default_checkpoint

        path = default_checkpoint(engine)
    if engine == "auto":
        engine = "onnx" if str(path).lower().endswith(".onnx") else "torch"
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine '{engine}' (known: auto, {', '.join(ENGINES)})")
    _check_precision(precision, engine)
    if engine in ("onnx", "openvino"):
        if not str(path).lower().endswith(".onnx"):
            raise ConfigError(f"--engine {engine} needs an .onnx file (made by `htrlab export`), got {path}")
        return onnx_engine(path, threads) if engine == "onnx" else openvino_engine(path, threads, precision)
    return torch_engine(path, threads, precision)
