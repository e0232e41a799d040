"""Evaluating a checkpoint on dataset splits: one row per split, with a leakage check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from htrlab.data.dataset import Dataset, open_dataset
from htrlab.data.prepared import default_cache_dir, line_key, prepare_lines
from htrlab.models.checkpoint import LoadedModel
from htrlab.read.engines import Engine
from htrlab.read.reader import Reader
from htrlab.text.metrics import count_errors


@dataclass
class SplitResult:
    split: str
    lines: int
    cer: float
    wer: float
    chars: int
    words: int
    leaked: int  # lines among the checkpoint's training lines (same image, or same id and text)
    skipped: int  # lines of this split that could not be read (on_error=skip), named in skipped_lines
    seconds: float
    predictions: list[dict[str, Any]] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list, repr=False)  # preprocessed lines, for reports
    skipped_lines: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("predictions", "images")}


def evaluate_splits(
    reader: Reader | LoadedModel | Engine,
    dataset: str | Path | Dataset,
    splits: list[str],
    on_error: str = "error",
    drop_empty: bool = True,
    max_lines: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> list[SplitResult]:
    """Read each split of ``dataset`` with ``reader`` (:class:`htrlab.read.Reader`: its decoder, its batch
    size) and score it (CER, WER). A loaded checkpoint or an engine is read greedily, in batches of 32
    (:meth:`Reader.of`)."""
    if not isinstance(reader, Reader):
        reader = Reader.of(reader)
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset, on_error=on_error)
    train_fps = set(reader.meta.data.get("train_fingerprints", []))
    train_keys = set(reader.meta.data.get("train_line_keys", []))
    results = []
    for split in splits:
        samples = [s for s in ds.split(split) if s.text or not drop_empty]
        if max_lines > 0:
            samples = samples[:max_lines]
        lines = prepare_lines(
            samples,
            reader.preprocess,
            on_error,
            cache_dir or default_cache_dir(),
            progress=progress,
            desc=split,
        )
        t0 = time.perf_counter()
        preds = reader.read_prepared(lines.images)
        secs = time.perf_counter() - t0
        counts = count_errors(lines.texts, [p.text for p in preds])
        # a training line: the same image, or the same line (id and text) of the same data cut another way
        leaked = sum(
            fp in train_fps or line_key(i, t) in train_keys
            for fp, i, t in zip(lines.fingerprints, lines.ids, lines.texts)
        )
        rows = [
            {"id": i, "ref": r, "hyp": p.text, "confidence": round(p.confidence, 4)}
            for i, r, p in zip(lines.ids, lines.texts, preds)
        ]
        results.append(
            SplitResult(
                split,
                len(lines),
                counts.cer,
                counts.wer,
                counts.chars,
                counts.words,
                leaked,
                len(lines.skipped),
                round(secs, 2),
                rows,
                lines.images,
                skipped_lines=list(lines.skipped),
            )
        )
    return results


def format_table(results: list[SplitResult]) -> str:
    """A Markdown table, one row per split."""
    out = ["| split | lines | CER % | WER % | leaked lines |", "|---|---:|---:|---:|---:|"]
    for r in results:
        out.append(f"| {r.split} | {r.lines} | {100 * r.cer:.2f} | {100 * r.wer:.2f} | {r.leaked} |")
    return "\n".join(out)
