"""Inference engines: the PyTorch model of a checkpoint, or its ONNX export run by onnxruntime.

Both take preprocessed batches ``(N, 1, H, W)`` with widths ``(N,)`` and return CTC log-probabilities
``(N, T, C)`` with frame counts ``(N,)``, so decoding, evaluation and benchmarks treat them alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from htrlab.config import from_dict
from htrlab.data.preprocess import PreprocessConfig
from htrlab.errors import CheckpointError, ConfigError
from htrlab.text.charset import Charset
from htrlab.train.checkpoint import META_KEY, CheckpointMeta, load_checkpoint

ENGINES = ("torch", "onnx")


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

    def __call__(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.forward(images, widths)
        return out


def torch_engine(path: str | Path, threads: int = 0) -> Engine:
    if threads > 0:
        torch.set_num_threads(threads)
    loaded = load_checkpoint(path)
    model = loaded.model.eval()

    @torch.no_grad()
    def forward(images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = model(images, widths)
        return out

    params = sum(p.numel() for p in model.parameters())
    return Engine("torch", Path(path), loaded.charset, loaded.preprocess, loaded.meta, params, forward, model)


MAX_BATCH_WORKERS = 8


def onnx_engine(path: str | Path, threads: int = 0) -> Engine:
    """Load an ONNX file written by :func:`htrlab.models.onnx_export.export_onnx` (metadata included).

    One session with ``threads`` intra-op threads serves single batches (lowest latency). Reading many
    batches, :func:`htrlab.evaluate.inference.emissions` runs them on several sessions at once instead
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
    raw = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path} has no htrlab metadata: export it with `htrlab export`")
    try:
        meta = from_dict(CheckpointMeta, json.loads(raw), where="onnx metadata")
        pre = from_dict(PreprocessConfig, meta.preprocess)
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad htrlab metadata: {exc}") from exc
    params = int(session.get_modelmeta().custom_metadata_map.get("htrlab_params", "0"))

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
        "onnx", path, Charset(meta.charset), pre, meta, params, forward_on(session), None, batch_workers
    )


def load_engine(path: str | Path, engine: str = "auto", threads: int = 0) -> Engine:
    """``engine="auto"`` picks ONNX for ``.onnx`` files and PyTorch otherwise; ``path="default"`` is the
    bundled model (its ONNX file, or its weights for ``engine="torch"``)."""
    if str(path) == "default":
        from htrlab.bundled import default_checkpoint

        path = default_checkpoint(engine)
    if engine == "auto":
        engine = "onnx" if str(path).lower().endswith(".onnx") else "torch"
    if engine == "onnx":
        if not str(path).lower().endswith(".onnx"):
            raise ConfigError(f"--engine onnx needs an .onnx file (made by `htrlab export`), got {path}")
        return onnx_engine(path, threads)
    if engine == "torch":
        return torch_engine(path, threads)
    raise ConfigError(f"unknown engine '{engine}' (known: auto, {', '.join(ENGINES)})")
