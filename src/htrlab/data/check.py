"""``htrlab data check``: statistics, problems and leakage between splits.

Leakage is what turned one user's train CER of 0.0001 into a test CER of 7.89: the same lines (or the same
images) on both sides of a split. Three checks:

* identical images: the raw crops hash the same (:func:`htrlab.data.prepared.fingerprint`);
* near-identical images: the preprocessed lines, shrunk to 16 x 64 cells, correlate above a threshold and their
  widths agree (catches re-scans, re-encodings and slightly different crops of one line);
* identical transcriptions of substantial length (short ones such as "My dear Dyer" recur legitimately and are
  only counted).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from htrlab.data.dataset import Dataset
from htrlab.data.prepared import PreparedLines, prepare_lines
from htrlab.data.preprocess import PreprocessConfig
from htrlab.text.normalize import odd_character_report


def thumbnail_vector(image: np.ndarray, rows: int = 16, cols: int = 64) -> np.ndarray:
    """A preprocessed line shrunk to ``rows x cols`` cells, centred and L2-normalised: (rows * cols,) float32.

    The dot product of two such vectors is their correlation; re-encoded or re-scanned copies of a line score
    above 0.99, different lines of one hand rarely above 0.9.
    """
    small = cv2.resize(image.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA).ravel()
    small = small - small.mean()
    return (small / (np.linalg.norm(small) + 1e-6)).astype(np.float32)


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values, dtype=np.float64)
    return {
        "min": float(a.min()),
        "median": float(np.median(a)),
        "mean": round(float(a.mean()), 1),
        "max": float(a.max()),
    }


@dataclass
class CheckReport:
    dataset: str
    format: str
    splits: dict[str, dict[str, Any]]
    charset: list[str]
    unseen_chars: dict[str, list[str]]
    char_counts: dict[str, int]
    problems: list[str]
    empty_labels: list[str]
    identical_images: list[tuple[str, str]] = field(default_factory=list)
    near_identical_images: list[tuple[str, str, float]] = field(default_factory=list)
    identical_texts: list[tuple[str, str, str]] = field(default_factory=list)
    short_repeated_texts: int = 0
    unsplit_lines: int = 0
    odd_characters: str | None = None  # control / invisible / emoji characters in transcriptions, and where

    @property
    def leakage(self) -> bool:
        return bool(self.identical_images or self.near_identical_images or self.identical_texts)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["leakage"] = self.leakage
        return d

    def format_text(self, limit: int = 10) -> str:
        out = [f"dataset {self.dataset} ({self.format})"]
        for name, s in self.splits.items():
            out.append(
                f"  {name:>6}: {s['lines']} lines, {s['documents']} documents, {s['writers']} writers | chars/line "
                f"{s['chars']} | height px {s['height']} | width px {s['width']}"
            )
        if self.unsplit_lines:
            out.append(f"  {self.unsplit_lines} lines belong to no split")
        out.append(f"charset ({len(self.charset)}): {''.join(self.charset)!r}")
        if self.odd_characters:
            out.append(f"WARNING: {self.odd_characters}")
        for split, chars in self.unseen_chars.items():
            if chars:
                out.append(f"  characters in {split} never seen in train: {''.join(chars)!r}")
        if self.empty_labels:
            out.append(
                f"empty transcriptions: {len(self.empty_labels)} (e.g. {', '.join(self.empty_labels[:3])})"
            )
        if self.problems:
            out.append(f"unreadable or malformed: {len(self.problems)}")
            out += [f"  {p}" for p in self.problems[:limit]]
        out.append("leakage between splits:")
        out.append(f"  identical images: {len(self.identical_images)}")
        out += [f"    {a} == {b}" for a, b in self.identical_images[:limit]]
        out.append(f"  near-identical images: {len(self.near_identical_images)}")
        out += [f"    {a} ~ {b} (correlation {d:.3f})" for a, b, d in self.near_identical_images[:limit]]
        out.append(f"  identical transcriptions (>= min length): {len(self.identical_texts)}")
        out += [f"    {a} / {b}: {t!r}" for a, b, t in self.identical_texts[:limit]]
        out.append(
            f"  short transcriptions repeated across splits (not counted as leakage): "
            f"{self.short_repeated_texts}"
        )
        out.append("LEAKAGE FOUND" if self.leakage else "no leakage found")
        return "\n".join(out)


def check_dataset(
    ds: Dataset,
    cfg: PreprocessConfig | None = None,
    min_text_chars: int = 40,
    min_similarity: float = 0.95,
    progress: bool = True,
) -> CheckReport:
    """Compute statistics, problems and leakage of ``ds`` (every image is read once)."""
    cfg = cfg or PreprocessConfig()
    problems = list(ds.skipped)
    lines: PreparedLines = prepare_lines(
        ds.samples, cfg, on_error="skip", cache_dir=None, progress=progress, desc="reading"
    )
    problems += lines.skipped
    by_id = {s.id: s for s in ds.samples}
    raw_sizes: dict[str, tuple[int, int]] = {}
    for sid, im in zip(lines.ids, lines.images):
        s = by_id[sid]
        if s.polygon is not None:
            x0, y0 = s.polygon.min(0)
            x1, y1 = s.polygon.max(0)
            raw_sizes[sid] = (int(y1 - y0), int(x1 - x0))
        else:
            raw_sizes[sid] = (cfg.height, im.shape[1])
    splits: dict[str, dict[str, Any]] = {}
    for name in ds.splits:
        ss = [s for s in ds.samples if s.split == name]
        sizes = [raw_sizes[s.id] for s in ss if s.id in raw_sizes]
        splits[name] = {
            "lines": len(ss),
            "documents": len({s.doc_id for s in ss}),
            "writers": len({s.writer_id for s in ss if s.writer_id}),
            "chars": _stats([len(s.text) for s in ss]),
            "height": _stats([h for h, _ in sizes]),
            "width": _stats([w for _, w in sizes]),
        }
    train_chars = {c for s in ds.samples if s.split == "train" for c in s.text}
    unseen = (
        {
            name: sorted({c for s in ds.samples if s.split == name for c in s.text} - train_chars)
            for name in ds.splits
            if name != "train"
        }
        if "train" in splits
        else {}
    )
    counts = Counter(c for s in ds.samples for c in s.text)
    report = CheckReport(
        dataset=str(ds.root),
        format=ds.format,
        splits=splits,
        charset=sorted(counts),
        unseen_chars=unseen,
        char_counts=dict(counts.most_common()),
        problems=problems,
        empty_labels=[s.id for s in ds.samples if not s.text],
        unsplit_lines=sum(1 for s in ds.samples if not s.split),
        odd_characters=odd_character_report([(s.id, s.text) for s in ds.samples]),
    )
    split_by_id = {s.id: s.split for s in ds.samples}
    # identical images
    groups: dict[str, list[str]] = defaultdict(list)
    for sid, fp in zip(lines.ids, lines.fingerprints):
        groups[fp].append(sid)
    for ids in groups.values():
        for a in ids:
            for b in ids:
                if a < b and split_by_id[a] != split_by_id[b]:
                    report.identical_images.append((a, b))
    # near-identical images across splits (identical ones are already reported)
    if len(lines):
        vecs = np.stack([thumbnail_vector(im) for im in lines.images])  # (N, 1024)
        widths = lines.widths.astype(np.float64)
        split_arr = np.asarray([split_by_id[i] or "" for i in lines.ids])
        exact = {frozenset(p) for p in report.identical_images}
        names = sorted(set(split_arr))
        for ai, a_name in enumerate(names):
            for b_name in names[ai + 1 :]:
                ia, ib = np.where(split_arr == a_name)[0], np.where(split_arr == b_name)[0]
                for start in range(0, len(ia), 1024):
                    chunk = ia[start : start + 1024]
                    sim = vecs[chunk] @ vecs[ib].T
                    ratio = widths[chunk][:, None] / widths[ib][None, :]
                    hit = (sim >= min_similarity) & (ratio > 0.9) & (ratio < 1.1)
                    for r, c in zip(*np.nonzero(hit)):
                        pair = (lines.ids[chunk[r]], lines.ids[ib[c]])
                        if frozenset(pair) not in exact:
                            report.near_identical_images.append((*pair, round(float(sim[r, c]), 4)))
    # identical transcriptions across splits
    by_text: dict[str, list[str]] = defaultdict(list)
    for s in ds.samples:
        if s.text and s.split:
            by_text[" ".join(s.text.lower().split())].append(s.id)
    for text, ids in by_text.items():
        cross = [(a, b) for a in ids for b in ids if a < b and split_by_id[a] != split_by_id[b]]
        if not cross:
            continue
        if len(text) >= min_text_chars:
            report.identical_texts += [(a, b, text) for a, b in cross]
        else:
            report.short_repeated_texts += 1
    return report
