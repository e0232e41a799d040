"""Running a CTC model over preprocessed lines (shared by training, evaluation and recognition)."""

from __future__ import annotations

import contextlib
import itertools
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from htrlab.data.batching import MAX_WIDTH_SPREAD, bucket_batches, collate
from htrlab.decoding.greedy import Decoded, greedy_decode
from htrlab.errors import ConfigError
from htrlab.models.base import Recognizer, is_seq2seq
from htrlab.read.engines import Engine
from htrlab.text.charset import Charset
from htrlab.text.normalize import normalize_text


def min_width_for(model: nn.Module, frames: int) -> int:
    """Smallest input width that gives at least ``frames`` CTC frames."""
    w = 1
    while int(model.output_length(w)) < frames:  # type: ignore[operator]
        w *= 2
    lo, hi = w // 2, w
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if int(model.output_length(mid)) >= frames:  # type: ignore[operator]
            hi = mid
        else:
            lo = mid
    return hi


def frames_needed(encoded_len: int, text: str) -> int:
    """CTC needs one frame per label plus a blank between repeated characters."""
    return encoded_len + sum(1 for a, b in itertools.pairwise(text) if a == b)


Forward = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def predict(
    model: nn.Module | Forward,
    charset: Charset,
    images: Sequence[np.ndarray],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    decoder: Callable[[torch.Tensor, torch.Tensor], list[Decoded]] | None = None,
) -> list[Decoded]:
    """Decode preprocessed lines (uint8 or float, ink high), greedily unless ``decoder`` is given; results in
    input order.

    Args:
        model: a CTC model, or any callable ``(images (N, 1, H, W), widths (N,)) -> (log_probs (N, T, C),
            lengths (N,))`` such as an ONNX engine.
        charset: the model's characters.
        images: preprocessed lines.
        batch_size: lines per forward pass (batches are formed by width).
        device: where torch models run.
        decoder: CTC decoding of a batch, ``(log_probs (N, T, C), lengths (N,)) -> list[Decoded]``, e.g. a
            :class:`htrlab.decoding.beam.BeamDecoder`; default greedy.
    """
    module = model if isinstance(model, nn.Module) else model.module if isinstance(model, Engine) else None
    if isinstance(model, nn.Module):
        model.eval()
    if is_seq2seq(module):
        with _precision(model):
            return _predict_seq2seq(module, charset, images, batch_size, device, decoder)
    return decode_emissions(emissions(model, images, batch_size, device), charset, decoder)


def _precision(model: nn.Module | Forward) -> contextlib.AbstractContextManager[Any]:
    """Where an engine runs PyTorch in its precision (bfloat16 autocast, htrlab.read.engines.Engine)."""
    return model.context() if isinstance(model, Engine) else contextlib.nullcontext()


@torch.no_grad()
def emissions(
    model: nn.Module | Forward,
    images: Sequence[np.ndarray],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> list[torch.Tensor]:
    """The CTC log-probabilities (T_i, C) of each preprocessed line, in input order (batched by width), so
    several decoders can read the same network outputs."""
    if isinstance(model, nn.Module):
        model.eval()
    out: list[torch.Tensor | None] = [None] * len(images)
    batches = bucket_batches([im.shape[1] for im in images], batch_size, max_spread=MAX_WIDTH_SPREAD)
    # engines that read lines faster in small runs get each batch as several calls (ONNX_LINES_PER_RUN)
    per_run = model.lines_per_run if isinstance(model, Engine) else 0
    if per_run > 0:
        batches = [b[i : i + per_run] for b in batches for i in range(0, len(b), per_run)]

    def run(idx: list[int], forward: nn.Module | Forward) -> None:
        batch = collate([images[i] for i in idx], [""] * len(idx), [""] * len(idx))
        with torch.no_grad():  # worker threads do not inherit the caller's no_grad
            log_probs, lengths = forward(batch.images.to(device), batch.widths.to(device))
        lp, ln = log_probs.float().cpu(), lengths.cpu()
        for k, i in enumerate(idx):
            out[i] = lp[k, : int(ln[k])].clone()

    make_workers = model.batch_workers if isinstance(model, Engine) else None
    workers = make_workers() if make_workers is not None and len(batches) > 1 else []
    # (autocast is per thread: engines with batch workers run outside PyTorch)
    if len(workers) > 1:
        # widest batches first, each taken by whichever worker is free (every worker has its own session)
        todo: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        for idx in sorted(batches, key=lambda b: -max(images[i].shape[1] for i in b) * len(b)):
            todo.put(idx)

        def work(forward: Forward) -> None:
            while True:
                try:
                    idx = todo.get_nowait()
                except queue.Empty:
                    return
                run(idx, forward)

        with ThreadPoolExecutor(len(workers)) as pool:
            for future in [pool.submit(work, f) for f in workers]:
                future.result()  # re-raises a worker's error
    else:
        with _precision(model):
            for idx in batches:
                run(idx, model)
    return [e for e in out if e is not None]


def decode_emissions(
    ems: Sequence[torch.Tensor],
    charset: Charset,
    decoder: Callable[[torch.Tensor, torch.Tensor], list[Decoded]] | None = None,
) -> list[Decoded]:
    """Decode per-line log-probabilities (T_i, C) with ``decoder`` (default greedy)."""
    out: list[Decoded] = []
    for e in ems:
        lp, ln = e[None], torch.tensor([e.shape[0]])
        out += decoder(lp, ln) if decoder is not None else greedy_decode(lp, ln, charset)
    return out


def _predict_seq2seq(
    model: Recognizer,
    charset: Charset,
    images: Sequence[np.ndarray],
    batch_size: int,
    device: str | torch.device,
    decoder: Any = None,
) -> list[Decoded]:
    """Autoregressive models (TrOCR): batched greedy or beam generation. A beam decoder's settings carry over:
    its beam size, and its character LM fused into the search (:mod:`htrlab.decoding.seq2seq_lm`)."""
    model.eval()
    beams, processors = None, []
    if decoder is not None:
        from htrlab.decoding.beam import BeamDecoder

        if not isinstance(decoder, BeamDecoder):
            raise ConfigError("autoregressive models take --decoder greedy, beam or beam+char")
        if decoder.word_lm is not None or decoder.neural_lm is not None:
            raise ConfigError("autoregressive models fuse a character n-gram LM only (--decoder beam+char)")
        cfg = decoder.cfg
        beams = cfg.beam_size
        if decoder.lm_path is not None and cfg.lm_weight:
            from htrlab.decoding.seq2seq_lm import CharLMFusion

            processors.append(
                CharLMFusion(decoder.lm_path, model.token_texts(charset), model.eos, cfg.lm_weight)
            )
    results: list[Decoded | None] = [None] * len(images)
    for idx in bucket_batches([im.shape[1] for im in images], batch_size, max_spread=MAX_WIDTH_SPREAD):
        batch = collate([images[i] for i in idx], [""] * len(idx), [""] * len(idx))
        texts, confs = model.generate(
            batch.images.to(device), charset, num_beams=beams, logits_processor=processors
        )
        for i, text, conf in zip(idx, texts, confs):
            results[i] = Decoded(normalize_text(text), conf)
    return [r for r in results if r is not None]


def split_emissions(
    engine: Any, ds: Any, split: str, max_lines: int = 0, batch_size: int = 32
) -> tuple[list[str], list[torch.Tensor], float, list[str]]:
    """The transcribed lines of one split of a dataset, prepared for ``engine`` (cached) and run through it once:
    their texts, log-probabilities, the seconds the network took, and their document ids (for benchmarks that
    read the same outputs with several decoders)."""
    from htrlab.data.prepared import default_cache_dir, prepare_lines

    samples = [s for s in ds.split(split) if s.text]
    if max_lines:
        samples = samples[:max_lines]
    lines = prepare_lines(samples, engine.preprocess, "skip", default_cache_dir(), progress=False)
    t0 = time.perf_counter()
    ems = emissions(engine, lines.images, batch_size)
    return lines.texts, ems, time.perf_counter() - t0, lines.doc_ids or [""] * len(ems)
