"""The training loop: width-bucketed CTC training with validation, early stopping, checkpoints and exact
resume. Runs unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel; gloo on CPU, nccl on
GPU), where rank 0 logs and writes checkpoints."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from htrlab.config import dump_yaml, to_dict
from htrlab.data.augment import augment
from htrlab.data.batching import (
    MAX_WIDTH_SPREAD,
    Batch,
    bucket_batches,
    collate,
    shard_batches,
)
from htrlab.data.dataset import open_dataset
from htrlab.data.linecrop import LINE_CROPS
from htrlab.data.prepared import default_cache_dir, line_key, prepare_lines
from htrlab.data.sample import CUT_MARK, LineSample, cut_every_way, style_of_cut
from htrlab.errors import CharsetError, CheckpointError, ConfigError, DataError
from htrlab.models.base import Recognizer, is_seq2seq
from htrlab.models.checkpoint import make_meta, save_checkpoint
from htrlab.models.registry import build_model, count_parameters
from htrlab.read.predict import frames_needed, min_width_for, predict
from htrlab.text.charset import Charset
from htrlab.text.metrics import count_errors, not_reading
from htrlab.text.normalize import odd_character_report
from htrlab.train.config import RunConfig
from htrlab.train.schedule import lr_factor
from htrlab.train.state import load_state, save_state

STATE_FILE = "last.state.safetensors"  # htrlab.train.state: no pickle
OLD_STATE_FILE = "last.state.pt"  # written by htrlab before 2026-12; refused on --resume (pickle)
# Settings a resumed run may change: how long it runs and how it reports, not what it learns from or how.
RESUMABLE_CHANGES = {
    "train.max_steps",
    "train.epochs",
    "train.time_budget_min",
    "train.patience",
    "train.progress",
    "train.log_every",
    "train.threads",
    "train.channels_last",
    "train.workers",
}


def _config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Flattened keys whose values differ between two config dicts."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in set(old) | set(new):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict) and key != "params":
            out.update(_config_diff(a, b, name + "."))
        elif a != b:
            out[name] = (a, b)
    return out


def _with_defaults(saved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the keys it lacks taken from ``defaults`` (options newer than the saved run)."""
    out = dict(saved)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict) and key != "params":
            out[key] = _with_defaults(out[key], value)
    return out


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _AugmentedBatches(torch.utils.data.Dataset):
    """The batches of one epoch from ``start`` on, augmented and collated; item k is batch ``start + k``.

    Each batch's augmentation is seeded by its position (seed, epoch, batch, rank), so the batches are the same
    whether they are made in the training process or in DataLoader workers, and after a resume.
    """

    def __init__(
        self,
        lines: Any,
        batches: list[Any],
        start: int,
        seeds: tuple[int, int, int],
        cfg: RunConfig,
        charset: Charset,
        square: bool,
    ) -> None:
        self.lines, self.batches, self.start = lines, batches, start
        self.seed, self.epoch, self.rank = seeds
        self.cfg, self.charset, self.square = cfg, charset, square

    def __len__(self) -> int:
        return len(self.batches) - self.start

    def __getitem__(self, k: int) -> Any:
        b = self.start + k
        idx = self.batches[b]
        rng = np.random.default_rng([self.seed, self.epoch, b, self.rank])
        imgs = [
            augment(self.lines.images[i].astype(np.float32) / 255.0, rng, self.cfg.augment, self.square)
            for i in idx
        ]
        return collate(
            imgs, [self.lines.texts[i] for i in idx], [self.lines.ids[i] for i in idx], self.charset
        )


class _ResidentLines:
    """The prepared training lines as one uint8 tensor on the training device (row-major, line after line),
    from which batches are gathered and augmented there (``train.resident_data``)."""

    def __init__(self, lines: Any, device: torch.device) -> None:
        self.height = lines.images[0].shape[0]
        widths = np.array([im.shape[1] for im in lines.images], dtype=np.int64)
        self.widths = widths
        self.offsets = np.concatenate([[0], np.cumsum(widths * self.height)[:-1]])
        flat = np.concatenate([im.reshape(-1) for im in lines.images])
        self.flat = torch.from_numpy(flat).to(device)
        self.device = device

    def gather(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Lines ``idx`` as a (B, 1, H, W) float batch (ink = 1), padded to a multiple of 8, and their widths."""
        w = self.widths[idx]
        width = int(np.ceil(w.max() / 8) * 8)
        out = torch.zeros(len(idx), 1, self.height, width, device=self.device)
        for k, i in enumerate(idx):
            n = int(self.widths[i]) * self.height
            line = self.flat[int(self.offsets[i]) : int(self.offsets[i]) + n].view(self.height, -1)
            out[k, 0, :, : line.shape[1]] = line.float() / 255.0
        return out, torch.from_numpy(w)


def _resident_stream(
    resident: _ResidentLines,
    lines: Any,
    batches: list[Any],
    start: int,
    seeds: tuple[int, int, int],
    cfg: RunConfig,
    charset: Charset,
) -> Generator[Any, None, None]:
    """The batches of one epoch from ``start`` on, gathered and augmented on the device; each batch's random
    draws are seeded by its position (seed, epoch, batch, rank), as the line-by-line path does."""
    from htrlab.data.augment_torch import augment_batch

    seed, epoch, rank = seeds
    for b in range(start, len(batches)):
        idx = batches[b]
        images, widths = resident.gather(idx)
        key = int(np.random.default_rng([seed, epoch, b, rank]).integers(2**62))
        gen = torch.Generator().manual_seed(key)
        noise_gen = None
        if images.device.type != "cpu":
            noise_gen = torch.Generator(device=images.device).manual_seed(key)
        images, widths = augment_batch(images, widths, cfg.augment, gen, noise_gen)
        texts, ids = [lines.texts[i] for i in idx], [lines.ids[i] for i in idx]
        encoded = [charset.encode(t, sid) for t, sid in zip(texts, ids)]
        yield Batch(
            images,
            widths,
            torch.tensor([c for e in encoded for c in e], dtype=torch.long),
            torch.tensor([len(e) for e in encoded], dtype=torch.long),
            texts,
            ids,
        )


def _use_resident(cfg: RunConfig, device: torch.device, square: bool) -> bool:
    """Whether ``train.resident_data`` asks for the resident path here (refused where it cannot run)."""
    from htrlab.data.augment_torch import supports

    choice = str(cfg.train.resident_data).lower()
    can = supports(cfg.augment, square)
    if choice == "true" and not can:
        raise ConfigError(
            "train.resident_data: augmentation on the device does not do augment.damage or square inputs; "
            "set train.resident_data=false"
        )
    return choice == "true" or (choice == "auto" and device.type == "cuda" and can)


def _batch_stream(data: _AugmentedBatches, workers: int) -> Generator[Any, None, None]:
    """The batches of ``data`` in order, made here (``workers == 0``) or in DataLoader worker processes."""
    if workers == 0:
        for k in range(len(data)):
            yield data[k]
        return
    import cv2

    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,  # items are whole batches already
        shuffle=False,
        num_workers=min(workers, max(1, len(data))),
        prefetch_factor=4,
        # its own generator: a DataLoader otherwise draws its workers' seed from torch's global generator,
        # which would shift the dropout masks of the run with the number of workers
        generator=torch.Generator().manual_seed(0),
    )
    # OpenCV's thread pool does not survive fork(): a worker forked while the pool has threads hangs at its
    # first OpenCV call. So the workers are forked with the pool at one thread (the state they inherit, one
    # core each, which is what a worker should use anyway) and this process gets its threads back afterwards.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    # The DataLoader installs a SIGCHLD handler for its workers that stays after they are gone; in a process
    # that later runs subprocesses (a test suite, a notebook) their exit then crashed Python (segmentation
    # fault, seen with torch 2.13 on CPU). The handler is put back once the workers are stopped; a worker that
    # dies is still noticed by the DataLoader's own status checks.
    sigchld = signal.getsignal(signal.SIGCHLD) if hasattr(signal, "SIGCHLD") else None
    try:
        batches = iter(loader)  # forks the workers
    finally:
        cv2.setNumThreads(threads)
    try:
        yield from batches
    finally:
        # closing the stream stops the workers now, not whenever the garbage collector reaches an iterator
        # left unfinished (a run that stops mid-epoch)
        del batches
        if sigchld is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGCHLD, sigchld)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _device(cfg_device: str, local_rank: int) -> torch.device:
    """The device of this process: under torchrun, process ``local_rank`` of a machine takes GPU ``local_rank``
    (each process needs a GPU of its own: NCCL refuses two ranks on one GPU)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if cfg_device == "auto":
        # more processes on this machine than GPUs: every process on the CPU (all ranks must agree)
        cfg_device = "cuda" if gpus >= local_procs and gpus > 0 else "cpu"
    if cfg_device == "cuda":
        if gpus == 0:
            raise ConfigError("train.device is 'cuda' but no CUDA device is available")
        if local_rank >= gpus:
            raise ConfigError(
                f"train.device is 'cuda' but this machine runs {local_procs} training processes and has {gpus} "
                f"GPU(s): run at most {gpus} per machine (torchrun --nproc_per_node {gpus}) or use train.device=cpu"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)  # NCCL's collectives use the current device
        return device
    if cfg_device != "cpu":
        raise ConfigError(f"train.device must be auto, cpu or cuda, got {cfg_device!r}")
    return torch.device("cpu")


def resolve_model_params(cfg: RunConfig) -> dict[str, Any]:
    """Model params with ``input_height`` tied to ``preprocess.height`` (a mismatch is a config error)."""
    params = dict(cfg.model.params)
    h = params.get("input_height")
    if h is not None and h != cfg.preprocess.height:
        raise ConfigError(
            f"model.params.input_height={h} but preprocess.height={cfg.preprocess.height}; they must match"
        )
    params["input_height"] = cfg.preprocess.height
    return params


class _Logger:
    """Rank-0 metrics log (JSONL) and the end-of-run curve."""

    def __init__(self, out_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")


def _drop_metrics_after(path: Path, step: int) -> None:
    """Remove the records of steps after ``step`` (logged after the last saved state, redone on resume)."""
    if not path.is_file():
        return
    kept = []
    for row in path.read_text(encoding="utf-8").splitlines():
        try:
            rec_step = json.loads(row).get("step", 0)
        except (ValueError, AttributeError):
            continue  # a line cut off when the run was killed
        if not isinstance(rec_step, int) or rec_step <= step:
            kept.append(row)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(r + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)


def plot_curves(metrics_path: Path, out_png: Path) -> None:
    """Loss and CER against steps, from a run's metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in metrics_path.read_text(encoding="utf-8").splitlines() if x.strip()]
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax1.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8)
    ax1.set_xlabel("step")
    ax1.set_ylabel("CTC loss")
    ax1.set_yscale("log")
    ax1.set_title("training loss")
    if evals:
        steps = [r["step"] for r in evals]
        ax2.plot(steps, [r["val_cer"] * 100 for r in evals], "o-", label="val CER")
        if any("train_cer" in r for r in evals):
            ax2.plot(steps, [r.get("train_cer", float("nan")) * 100 for r in evals], "s--", label="train CER")
        ax2.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("CER %")
    ax2.set_title("character error rate (greedy)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _select(samples: list[LineSample], drop_empty: bool, limit: int) -> tuple[list[LineSample], int]:
    kept = [s for s in samples if s.text] if drop_empty else list(samples)
    dropped = len(samples) - len(kept)
    if limit > 0:
        kept = kept[:limit]
    return kept, dropped


def _opened_as(crop: str) -> str:
    """The style a dataset is opened with: a mixed set is opened as bands and cut every way afterwards."""
    return "band" if crop == "mixed" else crop


def line_groups(ids: list[str], texts: list[str]) -> np.ndarray:
    """For each prepared line, the index of the line it is a cut of: its id before the cut's suffix, and its
    text (two datasets may both have a line ``train/0001``; they are one line only if they also say the same)."""
    first: dict[tuple[str, str], int] = {}
    return np.array(
        [first.setdefault((i.split(CUT_MARK, 1)[0], t), len(first)) for i, t in zip(ids, texts)],
        dtype=np.int64,
    )


def draw_one_per_line(
    groups: np.ndarray, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """One cut of every line, drawn at random (the indices into the prepared lines, in line order); with
    ``weights`` (one per prepared line) a cut is drawn in proportion to its weight among its line's cuts."""
    if weights is None:
        keys = rng.random(len(groups))
    else:  # the smallest of exponential draws scaled by 1/weight falls to each cut with weight/sum odds
        keys = rng.exponential(size=len(groups)) / weights
    order = np.lexsort((keys, groups))  # by line, then at random within the line
    starts = np.r_[True, groups[order][1:] != groups[order][:-1]]
    return np.sort(order[starts])


def _width_validator(model: nn.Module, charset: Charset):
    max_length = int(getattr(model.cfg, "max_length", 0))

    def check_length(sample: LineSample, image: np.ndarray) -> str | None:
        if len(sample.text) > max_length:
            return (
                f"sample {sample.id}: text has {len(sample.text)} characters, more than the model's "
                f"max_length {max_length} (raise model.params.max_length or use data.on_error=skip)"
            )
        return None

    if is_seq2seq(model):
        return check_length

    def check(sample: LineSample, image: np.ndarray) -> str | None:
        need = frames_needed(len(sample.text), sample.text)
        have = int(model.output_length(image.shape[1]))  # type: ignore[operator]
        if have < need:
            return (
                f"sample {sample.id}: image is {image.shape[1]} px wide after preprocessing, giving {have} CTC "
                f"frames, but its text needs {need}; minimum width {min_width_for(model, need)} px "
                "(raise the width or drop the sample with data.on_error=skip)"
            )
        return None

    return check


def _extra_samples(cfg: RunConfig, unread: list[str]) -> list[tuple[Any, list[LineSample]]]:
    """The lines of each ``data.extra_train`` entry (empty lines dropped, a seeded subset when capped); what
    could not be read when a set was opened is added to ``unread``."""
    out = []
    for k, extra in enumerate(cfg.data.extra_train):
        crop = extra.line_crop or cfg.data.line_crop
        ds = open_dataset(extra.dataset, on_error=cfg.data.on_error, line_crop=_opened_as(crop))
        unread += ds.skipped
        samples = ds.split(extra.split) if extra.split else list(ds.samples)
        samples = [s for s in samples if s.text]
        if extra.max_lines and len(samples) > extra.max_lines:
            keep = np.random.default_rng([cfg.train.seed, k]).permutation(len(samples))[: extra.max_lines]
            samples = [samples[i] for i in sorted(keep)]
        if crop != cfg.data.line_crop:  # the main dataset's lines cut another way are other training lines
            for s in samples:
                s.id = f"{s.id}@{crop}"
        samples = cut_every_way(samples, crop, cfg.data.crop_variants)
        if not samples:
            raise DataError(
                f"data.extra_train: no lines with text in {extra.dataset} (split {extra.split!r})"
            )
        out.append((extra, samples))
    return out


def _load_warm_start(cfg: RunConfig) -> Any:
    """The checkpoint named by ``model.init_from``, checked against this run's model and preprocessing."""
    from htrlab.models.checkpoint import load_checkpoint

    if cfg.model.init_from == "default":
        from htrlab.bundled import default_checkpoint

        loaded = load_checkpoint(default_checkpoint("torch"))
    else:
        loaded = load_checkpoint(cfg.model.init_from)
    if loaded.meta.model_name != cfg.model.name:
        raise ConfigError(
            f"model.init_from: {cfg.model.init_from} holds a '{loaded.meta.model_name}' model, this run trains "
            f"'{cfg.model.name}'; set model.name={loaded.meta.model_name}"
        )
    # Height, resizing and contrast normalisation define what the network was built to see; widths (a squeeze,
    # padding, limits) are what fine-tuning can adapt it to, so those may change, with a note.
    fixed: tuple[str, ...] = ("height", "resize", "normalize")
    if isinstance(loaded.model, Recognizer) and loaded.model.adapts_input_height:  # another height is fine
        fixed = ("resize", "normalize")
    old_pre, new_pre = asdict(loaded.preprocess), asdict(cfg.preprocess)
    if any(old_pre[k] != new_pre[k] for k in fixed):
        fix = " ".join(f"--set preprocess.{k}={old_pre[k]}" for k in fixed)
        raise ConfigError(
            f"model.init_from: the model in {cfg.model.init_from} was trained on images prepared differently; "
            f"use {fix}"
        )
    changed = {k: (old_pre[k], new_pre[k]) for k in old_pre if old_pre[k] != new_pre[k]}
    if changed:
        _log(
            "model.init_from: preprocessing differs from the starting model's ("
            + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            + "); fine-tuning adapts it"
        )
    return loaded


def _load_teacher(
    cfg: RunConfig, samples: list[LineSample], device: torch.device
) -> tuple[nn.Module, Charset]:
    """The teacher model for distillation; the student adopts its charset and must share its preprocessing."""
    from htrlab.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(cfg.train.distill_from, device)
    if loaded.preprocess != cfg.preprocess:
        fix = " ".join(f"--set preprocess.{k}={v}" for k, v in asdict(loaded.preprocess).items())
        raise ConfigError(
            f"distillation: the student must see the images as the teacher {cfg.train.distill_from} does; "
            f"use {fix}"
        )
    unknown = sorted({c for s in samples for c in s.text if c not in loaded.charset})
    if unknown:
        raise CharsetError(
            f"distillation: training text has characters {unknown!r} that the teacher "
            f"{cfg.train.distill_from} cannot output; train the teacher on the same data"
        )
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    return loaded.model.eval(), loaded.charset


def distillation_kl(
    teacher: nn.Module,
    images: torch.Tensor,
    widths: torch.Tensor,
    student_log_probs: torch.Tensor,
    lengths: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Mean over valid frames of KL(teacher || student) between temperature-softened frame posteriors.

    Args:
        teacher: the frozen teacher (same frame rate and classes as the student; where the two round a line's
            last frame differently, the frames both have are compared).
        images: (N, 1, H, W) batch; widths: (N,).
        student_log_probs: (N, T, C) student log-probabilities; lengths: (N,) valid frames.
        temperature: T > 1 softens both distributions so the teacher's ranking of wrong characters is learnt.
    """
    with torch.no_grad():
        t_lp, _ = teacher(images, widths)
    t = min(t_lp.shape[1], student_log_probs.shape[1])
    t_log = F.log_softmax(t_lp[:, :t].float() / temperature, dim=-1)
    s_log = F.log_softmax(student_log_probs[:, :t].float() / temperature, dim=-1)
    kl = (t_log.exp() * (t_log - s_log)).sum(-1)  # (N, T)
    mask = (torch.arange(kl.shape[1], device=kl.device)[None, :] < lengths.to(kl.device)[:, None]).float()
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


@dataclass
class Progress:
    """Where a run stands: saved with the training state after every validation and restored by ``--resume``."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of the current epoch done
    best_cer: float = math.inf
    bad_evals: int = 0  # validations in a row without a new best (train.patience)
    elapsed: float = 0.0  # training seconds, over every session of the run
    best_step: int = -1
    last_eval_step: int = -1


@dataclass
class _Setup:
    """Where the process runs: rank and world under torchrun, the device, the run folder."""

    cfg: RunConfig
    rank: int
    world: int
    local_rank: int
    device: torch.device
    out_dir: Path

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE


@dataclass
class _Data:
    """The prepared lines of a run and what is reported about them."""

    charset: Charset
    train_lines: Any  # PreparedLines
    val_lines: Any
    summary: dict[str, Any]  # stored in every checkpoint's metadata (``data``)


@dataclass
class _Run:
    """Everything a training step and a validation read and change."""

    setup: _Setup
    data: _Data
    model: Recognizer
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    teacher: nn.Module | None
    opt: torch.optim.Optimizer
    ema: AveragedModel | None
    logger: _Logger
    total_steps: int
    budget_s: float
    train_eval_idx: np.ndarray  # the training lines read at each validation (train CER)
    progress: Progress = field(default_factory=Progress)
    resident: _ResidentLines | None = None  # the training lines on the device (train.resident_data)

    @property
    def cfg(self) -> RunConfig:
        return self.setup.cfg

    def progress_frac(self) -> float:
        """How far the run is, by steps or by its time budget, whichever is further (the LR schedule's x)."""
        p = self.progress.step / self.total_steps if self.total_steps else 0.0
        if self.budget_s > 0:
            p = max(p, self.progress.elapsed / self.budget_s)
        return p


def _start(cfg: RunConfig, resume: bool) -> _Setup:
    """Join the process group, check and create the run folder, seed the generators."""
    rank, world, local_rank = _dist_info()
    device = _device(cfg.train.device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if not cfg.data.dataset:
        raise ConfigError("data.dataset is empty: give the dataset path (e.g. --set data.dataset=PATH)")
    setup = _Setup(cfg, rank, world, local_rank, device, Path(cfg.train.out_dir))
    out_dir = setup.out_dir
    if setup.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume and (out_dir / "metrics.jsonl").exists():
            raise ConfigError(
                f"{out_dir} already holds a run; use --resume to continue it or choose another train.out_dir"
            )
        if resume and not setup.state_path.is_file():
            if (out_dir / OLD_STATE_FILE).is_file():
                load_state(out_dir / OLD_STATE_FILE)  # raises the reason it is not loaded
            raise CheckpointError(f"--resume: no {STATE_FILE} in {out_dir} to resume from")
        if not resume:
            dump_yaml(cfg, out_dir / "config.yaml")
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    return setup


@dataclass
class _Samples:
    """The lines a run reads, before preparation."""

    dataset: Any  # the opened main dataset
    train: list[LineSample]
    val: list[LineSample]
    extra: list[tuple[Any, list[LineSample]]]  # (ExtraTrainSet, its lines)
    dropped_train: int  # lines with empty transcriptions left out
    dropped_val: int
    unread: list[str]  # pages and lines that could not be read when the data was opened

    @property
    def all_train(self) -> list[LineSample]:
        return self.train + [s for _, samples in self.extra for s in samples]


def _open_samples(cfg: RunConfig) -> _Samples:
    ds = open_dataset(cfg.data.dataset, on_error=cfg.data.on_error, line_crop=_opened_as(cfg.data.line_crop))
    train, dropped_train = _select(
        ds.split(cfg.data.train_split), cfg.data.drop_empty, cfg.data.max_train_lines
    )
    val, dropped_val = _select(ds.split(cfg.data.val_split), cfg.data.drop_empty, cfg.data.max_val_lines)
    train = cut_every_way(train, cfg.data.line_crop, cfg.data.crop_variants)
    val = cut_every_way(val, cfg.data.line_crop, 0)
    if not train:
        raise DataError(f"no training lines in split '{cfg.data.train_split}' of {cfg.data.dataset}")
    unread = list(ds.skipped)  # on_error=skip
    extra = _extra_samples(cfg, unread)
    return _Samples(ds, train, val, extra, dropped_train, dropped_val, unread)


def _make_model(
    setup: _Setup, samples: _Samples, resume: bool
) -> tuple[Recognizer, nn.Module | None, Charset]:
    """The model (started from ``init_from``, its pretrained weights or at random), the distillation teacher,
    and the charset (the starting model's or the teacher's characters first)."""
    cfg, is_main = setup.cfg, setup.is_main
    charset = Charset.from_texts(s.text for s in samples.all_train)
    warm = None
    if cfg.model.init_from:
        warm = _load_warm_start(cfg)
        # the starting model's characters keep their indices; characters new in this data are appended
        charset = Charset(warm.charset.symbols + [c for c in charset.symbols if c not in warm.charset])
    teacher: nn.Module | None = None
    if cfg.train.distill_from:
        teacher, charset = _load_teacher(cfg, samples.all_train, setup.device)
    params = resolve_model_params(cfg)
    if warm is not None:  # the starting model's configuration, unless this run overrides a value
        params = {**warm.meta.model_config, **params}
    model = build_model(cfg.model.name, len(charset), params, tiny=cfg.model.tiny)
    if warm is not None and not resume:
        from htrlab.models.checkpoint import warm_start

        fresh = warm_start(model, charset, warm)
        if is_main:
            _log(f"model: initialised from {cfg.model.init_from}; new output rows for {fresh!r}")
    elif model.has_pretrained and not resume:
        fresh = model.init_pretrained(charset)
        source = str(getattr(model.cfg, "pretrained", ""))
        if is_main and source:
            _log(f"model: initialised from {source}; new output rows for {fresh!r}")
    if model.seq2seq and teacher is not None:
        raise ConfigError(
            f"distillation (train.distill_from) works between CTC models; {cfg.model.name} is not one"
        )
    if model.seq2seq and cfg.preprocess.resize != "square":
        raise ConfigError(f"{cfg.model.name} reads square images: set preprocess.resize=square")
    if teacher is not None:
        for w in (64, 333, 1000):
            n_s = int(model.output_length(w))  # type: ignore[operator]
            n_t = int(teacher.output_length(w))  # type: ignore[operator]
            if n_s != n_t:
                raise ConfigError(
                    f"distillation needs the student's frame rate to equal the teacher's: a {w} px line gives "
                    f"{n_s} student frames but {n_t} teacher frames; "
                    "give the student the teacher's width pooling (model.params.pools)"
                )
    return model, teacher, charset


def _prepare_data(setup: _Setup, samples: _Samples, model: nn.Module, charset: Charset) -> _Data:
    """Preprocess (or read from the cache) every line; rank 0 fills the cache first and reports the data."""
    cfg = setup.cfg
    cache_dir = Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()
    if setup.distributed and not setup.is_main:
        dist.barrier()  # rank 0 builds the cache first
    prog = cfg.train.progress and setup.is_main
    check = _width_validator(model, charset)
    train_lines = prepare_lines(
        samples.train, cfg.preprocess, cfg.data.on_error, cache_dir, check, prog, "train"
    )
    main_train_lines = len(train_lines)
    extra_counts = []
    for extra, more_samples in samples.extra:
        more = prepare_lines(
            more_samples, cfg.preprocess, cfg.data.on_error, cache_dir, check, prog, "extra train"
        )
        line_crop = extra.line_crop or cfg.data.line_crop
        extra_counts.append(
            {"dataset": extra.dataset, "split": extra.split, "line_crop": line_crop, "lines": len(more)}
        )
        if setup.is_main:
            _log(f"data: + {len(more)} training lines from {extra.dataset} ({len(more.skipped)} skipped)")
        train_lines = train_lines.concat(more)
    val_lines = prepare_lines(samples.val, cfg.preprocess, cfg.data.on_error, cache_dir, None, prog, "val")
    if setup.distributed and setup.is_main:
        dist.barrier()
    ds = samples.dataset
    summary = {
        "dataset": str(ds.root),
        "format": ds.format,
        "train_split": cfg.data.train_split,
        "val_split": cfg.data.val_split,
        "line_crop": cfg.data.line_crop,
        "train_lines": len(train_lines),
        "val_lines": len(val_lines),
        "skipped_train_lines": len(train_lines.skipped),
        "skipped_when_opened": len(samples.unread),
        "empty_train_lines_left_out": samples.dropped_train,
        "train_fingerprints": train_lines.fingerprints,
        "train_line_keys": [
            line_key(i.split(CUT_MARK, 1)[0].split("@", 1)[0], t)
            for i, t in zip(train_lines.ids, train_lines.texts)
        ],
        "main_train_lines": main_train_lines,
        "extra_train": extra_counts,
    }
    return _Data(charset, train_lines, val_lines, summary)


def _report_data(setup: _Setup, samples: _Samples, data: _Data, model: nn.Module) -> None:
    """Rank 0 logs the data: counts, what was skipped (listed in skipped.txt), odd and unknown characters."""
    if not setup.is_main:
        return
    cfg, train_lines, val_lines = setup.cfg, data.train_lines, data.val_lines
    main, ds = data.summary["main_train_lines"], samples.dataset
    _log(
        f"data: {ds.format} {ds.root}: {main} train lines"
        + (f" ({len(train_lines)} with the extra sets)" if len(train_lines) != main else "")
        + f", {len(val_lines)} val lines, {len(data.charset) - 1} characters"
    )
    if samples.dropped_train or samples.dropped_val:
        _log(
            f"data: left out {samples.dropped_train} train / {samples.dropped_val} val lines with empty "
            "transcriptions"
        )
    unread = samples.unread + train_lines.skipped + val_lines.skipped
    if unread:
        skipped_file = setup.out_dir / "skipped.txt"
        skipped_file.write_text("\n".join(unread) + "\n", encoding="utf-8")
        _log(
            f"data: skipped {len(samples.unread)} pages or lines when opening the data, {len(train_lines.skipped)} "
            f"train / {len(val_lines.skipped)} val samples when preparing them (on_error=skip), all listed in "
            f"{skipped_file}; e.g. {unread[0]}"
        )
    odd = odd_character_report([(i, t) for i, t in zip(train_lines.ids, train_lines.texts)])
    if odd:
        _log(f"data: WARNING: {odd}")
    unknown_val = sorted({c for s in samples.val for c in s.text if c not in data.charset})
    if unknown_val:
        _log(
            f"data: validation text has characters never seen in training: {unknown_val!r} (they count as errors)"
        )
    _log(
        f"model: {cfg.model.name}, {count_parameters(model):,} parameters, device {setup.device}, "
        f"world {setup.world}"
    )


def _place_model(setup: _Setup, model: nn.Module, teacher: nn.Module | None) -> nn.Module:
    """Move the model (and teacher) to the device and layout; returns what the step calls (DDP when distributed)."""
    cfg, device = setup.cfg, setup.device
    model.to(device)
    if cfg.train.channels_last and device.type == "cpu":
        # a no-op for models without convolutions (torch's stubs omit memory_format on Module.to)
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if teacher is not None:
            teacher.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    elif cfg.train.channels_last and setup.is_main:
        _log(
            "train.channels_last is for CPUs and is not applied on GPUs (ppocrv5-rec on an H100: 3.9 s per "
            "forward+backward in channels-last against 0.12 s in the standard layout)"
        )
    if not setup.distributed:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[setup.local_rank] if device.type == "cuda" else None
    )


def cut_weights(ids: list[str], weights: dict[str, float]) -> np.ndarray | None:
    """Each prepared line's weight in :func:`draw_one_per_line` by the style of its cut (``data.crop_weights``;
    ``None`` when every style weighs alike). Lines that are not cuts of a page line weigh 1."""
    if not weights or len({weights.get(c, 1.0) for c in LINE_CROPS}) == 1:
        return None
    return np.array([weights.get(style_of_cut(i) or "", 1.0) for i in ids])


def _epoch_batches(
    setup: _Setup, widths: np.ndarray, groups: np.ndarray, epoch_rng: Any, weights: np.ndarray | None
) -> list[list[int]]:
    """One epoch's batches of line indices for this rank: one cut per line (drawn by ``weights``), bucketed by
    width."""
    cfg = setup.cfg
    drawn = draw_one_per_line(groups, epoch_rng, weights)
    batches = shard_batches(
        bucket_batches(
            widths[drawn],
            cfg.train.batch_size,
            epoch_rng,
            cfg.train.max_pixels or None,
            cfg.preprocess.height,
            MAX_WIDTH_SPREAD,
        ),
        setup.rank,
        setup.world,
    )
    return [[int(drawn[i]) for i in b] for b in batches]


def _count_steps(setup: _Setup, train_lines: Any) -> int:
    cfg = setup.cfg
    groups = line_groups(train_lines.ids, train_lines.texts)
    # the first epoch's draw with a fixed generator: bucket_batches(None) does not shuffle
    drawn = draw_one_per_line(groups, np.random.default_rng(cfg.train.seed))
    batches = bucket_batches(
        train_lines.widths[drawn],
        cfg.train.batch_size,
        None,
        cfg.train.max_pixels or None,
        cfg.preprocess.height,
        MAX_WIDTH_SPREAD,
    )
    steps_per_epoch = len(shard_batches(batches, setup.rank, setup.world))
    if steps_per_epoch == 0:
        raise DataError(f"too few training lines ({len(train_lines)}) for {setup.world} processes")
    total = cfg.train.epochs * steps_per_epoch
    return min(total, cfg.train.max_steps) if cfg.train.max_steps > 0 else total


def _set_up(cfg: RunConfig, resume: bool) -> _Run:
    """Everything before the first step: data, model, optimizer, and the saved state when resuming."""
    setup = _start(cfg, resume)
    samples = _open_samples(cfg)
    model, teacher, charset = _make_model(setup, samples, resume)
    data = _prepare_data(setup, samples, model, charset)
    _report_data(setup, samples, data, model)
    net = _place_model(setup, model, teacher)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    ema: AveragedModel | None = None
    if cfg.train.ema > 0:
        # torch's own EMA of parameters and BatchNorm statistics; its first update copies the weights
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema), use_buffers=True)
    train_eval_idx = np.random.default_rng(cfg.train.seed).permutation(len(data.train_lines))
    run = _Run(
        setup,
        data,
        model,
        net,
        teacher,
        opt,
        ema,
        _Logger(setup.out_dir, setup.is_main),
        _count_steps(setup, data.train_lines),
        cfg.train.time_budget_min * 60.0,
        train_eval_idx[: cfg.train.train_eval_lines],
    )
    if resume:
        _restore(run)
    return run


def _restore(run: _Run) -> None:
    """Load the saved state of the run (--resume); only RESUMABLE_CHANGES may differ from its configuration."""
    setup, cfg = run.setup, run.cfg
    saved = load_state(setup.state_path)
    # settings added to htrlab after the run started count as their defaults (what the run used)
    old_cfg = _with_defaults(saved.get("config", {}), to_dict(RunConfig()))
    diff = _config_diff(old_cfg, to_dict(cfg))
    if set(diff) - RESUMABLE_CHANGES:
        raise ConfigError(
            f"--resume: the configuration differs from the one saved in {setup.out_dir} in "
            f"{', '.join(sorted(set(diff) - RESUMABLE_CHANGES))}; only {', '.join(sorted(RESUMABLE_CHANGES))} "
            "may change when resuming"
        )
    if diff and setup.is_main:
        _log(f"resume: changed {', '.join(f'{k}: {a} -> {b}' for k, (a, b) in sorted(diff.items()))}")
    try:
        run.model.load_state_dict(saved["model"])
        run.opt.load_state_dict(saved["optimizer"])
        if run.ema is not None:
            run.ema.load_state_dict(saved["ema"])
        run.progress = Progress(**saved["progress"])
        torch.set_rng_state(saved["torch_rng"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{setup.state_path}: does not fit this run ({exc})") from exc
    p = run.progress
    if (
        setup.is_main
    ):  # the resume is accepted: its config is the run's now, and steps past the state are redone
        dump_yaml(cfg, setup.out_dir / "config.yaml")
        _drop_metrics_after(setup.out_dir / "metrics.jsonl", p.step)
        _log(f"resume: step {p.step}, epoch {p.epoch}, batch {p.batch}, best val CER {p.best_cer:.4f}")


def _validate(run: _Run) -> dict[str, Any]:
    """Read val (and a sample of train) with the judged weights; returns the eval record of metrics.jsonl."""
    t0 = time.time()
    cfg, device, data, p = run.cfg, run.setup.device, run.data, run.progress
    judged = run.model if run.ema is None else run.ema.module  # the weights that are validated and saved
    charset, val_lines, train_lines = data.charset, data.val_lines, data.train_lines
    val_pred = predict(judged, charset, val_lines.images, cfg.train.eval_batch_size, device)
    val_hyps = [d.text for d in val_pred]
    val_counts = count_errors(val_lines.texts, val_hyps)
    raw_cer = None
    if run.ema is not None:
        raw_pred = predict(run.model, charset, val_lines.images, cfg.train.eval_batch_size, device)
        raw_cer = count_errors(val_lines.texts, [d.text for d in raw_pred]).cer
    tr_imgs = [train_lines.images[i] for i in run.train_eval_idx]
    tr_pred = predict(judged, charset, tr_imgs, cfg.train.eval_batch_size, device)
    tr_counts = count_errors([train_lines.texts[i] for i in run.train_eval_idx], [d.text for d in tr_pred])
    run.model.train()
    rec = {
        "kind": "eval",
        "step": p.step,
        "epoch": p.epoch,
        "val_cer": val_counts.cer,
        "val_wer": val_counts.wer,
        "train_cer": tr_counts.cer,
        **({"val_cer_raw": raw_cer} if raw_cer is not None else {}),
        "elapsed_s": round(p.elapsed, 1),
        "eval_s": round(time.time() - t0, 1),
        "examples": [
            {"ref": val_lines.texts[i], "hyp": val_pred[i].text} for i in range(min(3, len(val_pred)))
        ],
    }
    warning = not_reading(val_lines.texts, val_hyps)
    if warning:
        rec["warning"] = warning
    return rec


def _validate_and_save(run: _Run) -> bool:
    """Validate, log, checkpoint (last, best when improved, the training state); True when training should
    stop early (train.patience)."""
    cfg, p = run.cfg, run.progress
    rec = _validate(run)
    p.last_eval_step = p.step
    improved = rec["val_cer"] < p.best_cer
    if improved:
        p.best_cer, p.best_step, p.bad_evals = rec["val_cer"], p.step, 0
    else:
        p.bad_evals += 1
    run.logger.write(rec)
    if run.setup.is_main:
        raw = rec.get("val_cer_raw")
        _log(
            f"eval step {p.step} epoch {p.epoch}: val CER {rec['val_cer']:.4f} WER {rec['val_wer']:.4f} | "
            f"train CER {rec['train_cer']:.4f} | best {p.best_cer:.4f}"
            + (f" | raw weights val CER {raw:.4f}" if raw is not None else "")
        )
        if "warning" in rec:
            _log(f"   warning (validation): {rec['warning']}")
        for ex in rec["examples"]:
            _log(f"   ref: {ex['ref']}\n   hyp: {ex['hyp']}")
        _save(run, improved, rec["val_cer"])
    if run.setup.distributed:
        dist.barrier()
    return cfg.train.patience > 0 and p.bad_evals >= cfg.train.patience


def _save(run: _Run, improved: bool, val_cer: float) -> None:
    cfg, p, out_dir = run.cfg, run.progress, run.setup.out_dir
    judged = run.model if run.ema is None else run.ema.module
    training = {"step": p.step, "epoch": p.epoch, "val_cer": val_cer, "config": to_dict(cfg)}
    meta = make_meta(judged, cfg.model.name, run.data.charset, cfg.preprocess, run.data.summary, training)
    save_checkpoint(out_dir / "last.safetensors", judged, meta)
    if improved:
        save_checkpoint(out_dir / "best.safetensors", judged, meta)
    save_state(
        run.setup.state_path,
        {
            "model": run.model.state_dict(),
            **({"ema": run.ema.state_dict()} if run.ema is not None else {}),
            "optimizer": run.opt.state_dict(),
            "progress": asdict(p),
            "torch_rng": torch.get_rng_state(),
            "config": to_dict(cfg),
        },
    )


def _forward_loss(run: _Run, batch: Any) -> tuple[torch.Tensor, Any, Any]:
    """The batch's loss (CTC, or the autoregressive model's own), and the CTC log-probabilities and lengths."""
    device = run.setup.device
    log_probs = lengths = None
    if run.model.seq2seq:  # autoregressive models return their token cross-entropy
        loss = run.net(
            batch.images.to(device),
            batch.widths.to(device),
            batch.targets.to(device),
            batch.target_lengths.to(device),
            batch.texts,
        )
    else:
        log_probs, lengths = run.net(batch.images.to(device), batch.widths.to(device))
        loss = F.ctc_loss(
            log_probs.transpose(0, 1).float(),
            batch.targets.to(device),
            lengths.to(device),
            batch.target_lengths.to(device),
            blank=Charset.BLANK,
            reduction="mean",
            zero_infinity=True,
        )
    return loss, log_probs, lengths


def _step(run: _Run, batch: Any, autocast: Any) -> dict[str, float]:
    """One optimisation step on ``batch``; returns what the train record of metrics.jsonl logs of it."""
    cfg, p = run.cfg, run.progress
    for g in run.opt.param_groups:
        g["lr"] = cfg.train.lr * lr_factor(
            p.step, cfg.train.warmup_steps, run.progress_frac(), cfg.train.schedule, cfg.train.min_lr_ratio
        )
    kl = None
    with autocast:
        loss, log_probs, lengths = _forward_loss(run, batch)
    if run.teacher is not None:
        device = run.setup.device
        temp = cfg.train.distill_temperature
        kl = distillation_kl(
            run.teacher, batch.images.to(device), batch.widths.to(device), log_probs, lengths, temp
        )
        w_kd = cfg.train.distill_weight
        loss = (1.0 - w_kd) * loss + w_kd * temp * temp * kl
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = float("nan")
    if cfg.train.clip_grad > 0:
        gnorm = float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.train.clip_grad))
    run.opt.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return {"loss": loss.item(), **({"kl": float(kl.detach())} if kl is not None else {}), "grad_norm": gnorm}


def _batches_of_epoch(
    run: _Run, groups: np.ndarray, weights: np.ndarray | None
) -> tuple[int, Generator[Any, None, None]]:
    """The number of batches in the current epoch (one cut of each line, drawn by ``weights``) and a stream of
    them from ``progress.batch`` on: augmented on the device for resident lines, by DataLoader workers otherwise."""
    cfg, setup, p = run.cfg, run.setup, run.progress
    lines = run.data.train_lines
    epoch_rng = np.random.default_rng([cfg.train.seed, p.epoch])
    batches = _epoch_batches(setup, lines.widths, groups, epoch_rng, weights)
    seeds = (cfg.train.seed, p.epoch, setup.rank)
    if run.resident is not None:
        return len(batches), _resident_stream(
            run.resident, lines, batches, p.batch, seeds, cfg, run.data.charset
        )
    square = cfg.preprocess.resize == "square"  # augmented images are squeezed back into the square
    augmented = _AugmentedBatches(lines, batches, p.batch, seeds, cfg, run.data.charset, square)
    return len(batches), _batch_stream(augmented, cfg.train.workers)


def train(cfg: RunConfig, resume: bool = False) -> dict[str, Any]:
    """Train a CTC model as configured. Returns a summary (best val CER, checkpoint paths, ...)."""
    run = _set_up(cfg, resume)
    setup, p = run.setup, run.progress
    device, square = setup.device, cfg.preprocess.resize == "square"
    if _use_resident(cfg, device, square):
        run.resident = _ResidentLines(run.data.train_lines, device)
        if setup.is_main:
            _log(
                f"data: {len(run.data.train_lines)} training lines resident on {device} "
                f"({run.resident.flat.numel() / 2**20:.0f} MiB), augmented there"
            )
    groups = line_groups(run.data.train_lines.ids, run.data.train_lines.texts)  # a line's cuts: one per epoch
    weights = cut_weights(run.data.train_lines.ids, cfg.data.crop_weights)  # which of them, how often
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.precision == "bf16")
    run.model.train()
    # under a time budget the step count is not known in advance
    bar_total = None if run.budget_s > 0 and cfg.train.max_steps == 0 else run.total_steps
    prog = cfg.train.progress and setup.is_main
    bar = tqdm(total=bar_total, initial=p.step, disable=not prog, unit="step", dynamic_ncols=True)
    stop = False
    last_log = time.time()
    run_start_elapsed, t_start = p.elapsed, time.time()
    while not stop and p.epoch < cfg.train.epochs:
        n_batches, stream = _batches_of_epoch(run, groups, weights)
        while p.batch < n_batches:
            logged = _step(run, next(stream), autocast)
            p.step += 1
            p.batch += 1
            p.elapsed = run_start_elapsed + (time.time() - t_start)
            bar.update(1)
            bar.set_postfix(loss=f"{logged['loss']:.3f}", ep=p.epoch)
            if p.step % cfg.train.log_every == 0:
                now = time.time()
                run.logger.write(
                    {
                        "kind": "train",
                        "step": p.step,
                        "epoch": p.epoch,
                        "loss": logged["loss"],
                        "lr": run.opt.param_groups[0]["lr"],
                        **{k: v for k, v in logged.items() if k != "loss"},
                        "elapsed_s": round(p.elapsed, 1),
                        "s_per_step": round((now - last_log) / cfg.train.log_every, 3),
                    }
                )
                last_log = now
            out_of_steps = cfg.train.max_steps > 0 and p.step >= cfg.train.max_steps
            out_of_time = run.budget_s > 0 and p.elapsed >= run.budget_s
            if cfg.train.eval_every > 0 and p.step % cfg.train.eval_every == 0:
                stop = _validate_and_save(run)
            if stop or out_of_steps or out_of_time:
                stop = True
                break
        stream.close()
        if not stop:
            p.epoch += 1
            p.batch = 0
        end_of_run = stop or p.epoch >= cfg.train.epochs
        if (end_of_run or cfg.train.eval_every == 0) and p.last_eval_step != p.step:
            stop = _validate_and_save(run) or stop
    bar.close()
    return _finish(run)


def _finish(run: _Run) -> dict[str, Any]:
    """Curves, summary.json and the final log line (rank 0); leave the process group."""
    setup, p, out_dir = run.setup, run.progress, run.setup.out_dir
    summary = {
        "out_dir": str(out_dir),
        "best_val_cer": p.best_cer,
        "best_step": p.best_step,
        "steps": p.step,
        "epochs_done": p.epoch,
        "train_seconds": round(p.elapsed, 1),
        "best_checkpoint": str(out_dir / "best.safetensors"),
        "last_checkpoint": str(out_dir / "last.safetensors"),
    }
    if setup.is_main:
        try:
            plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png")
        except (OSError, ValueError) as exc:
            _log(f"warning: could not draw curves.png: {exc}")
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        _log(f"done: best val CER {p.best_cer:.4f} at step {p.best_step}; checkpoints in {out_dir}")
    if setup.distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def load_run_config(path: str | None, overrides: list[str]) -> RunConfig:
    from htrlab.config import load_config

    return load_config(RunConfig, path, overrides)


__all__ = ["RunConfig", "distillation_kl", "load_run_config", "plot_curves", "train"]
