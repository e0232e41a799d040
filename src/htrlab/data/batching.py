"""Width-bucketed batches: lines of similar width share a batch, so little compute is spent on padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from htrlab.text.charset import Charset

# Lines batched together are padded to the widest; networks that mix information along the whole line (the
# default model's attention neck, a BiLSTM without packing) then read a line differently beside a much wider
# one (a 340 px line beside a 660 px one: "The seeds arrived safely at Ker" alone, "... arived safely at keo"
# padded). Training and reading both batch lines within this fraction of each other's width, so a line is read
# (almost) the same whatever else is read with it, and as it was seen in training.
MAX_WIDTH_SPREAD = 0.1


def bucket_batches(
    widths: Sequence[int] | np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    max_pixels: int | None = None,
    height: int = 64,
    max_spread: float | None = None,
) -> list[list[int]]:
    """Group sample indices into batches of similar width.

    Indices are sorted by width (with a little random jitter when ``rng`` is given, so batches differ between
    epochs), cut into batches of at most ``batch_size`` lines, at most ``max_pixels`` padded pixels and, with
    ``max_spread``, no line wider than ``1 + max_spread`` times the batch's narrowest, and the batch order is
    shuffled when ``rng`` is given.
    """
    w = np.asarray(widths, dtype=np.float64)
    if len(w) == 0:
        return []
    keys = w * (1.0 + rng.uniform(-0.05, 0.05, len(w))) if rng is not None else w
    order = np.argsort(keys, kind="stable")
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0.0
    for i in order:
        wi = w[i]
        new_max = max(cur_max, wi)
        too_many = len(cur) >= batch_size
        too_big = max_pixels is not None and cur and new_max * height * (len(cur) + 1) > max_pixels
        too_wide = max_spread is not None and cur and wi > (1.0 + max_spread) * w[cur[0]]
        if cur and (too_many or too_big or too_wide):
            batches.append(cur)
            cur, new_max = [], wi
        cur.append(int(i))
        cur_max = new_max
    if cur:
        batches.append(cur)
    if rng is not None:
        perm = rng.permutation(len(batches))
        batches = [batches[j] for j in perm]
    return batches


def shard_batches(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """The batches of one distributed rank; every rank gets the same number (extra ones are dropped)."""
    if world <= 1:
        return batches
    n = len(batches) // world
    return batches[rank : n * world : world]


@dataclass
class Batch:
    """A padded batch.

    Attributes:
        images: (N, 1, H, W) float32, ink = 1, padded with 0.
        widths: (N,) true widths before padding.
        targets: (sum of label lengths,) int64 class indices (empty when there are no labels).
        target_lengths: (N,) int64.
        texts: the transcriptions.
        ids: the sample ids.
    """

    images: torch.Tensor
    widths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor
    texts: list[str]
    ids: list[str]


def collate(
    images: Sequence[np.ndarray],
    texts: Sequence[str],
    ids: Sequence[str],
    charset: Charset | None = None,
    multiple: int = 8,
) -> Batch:
    """Pad images to a common width (a multiple of ``multiple``) and encode their texts."""
    n = len(images)
    h = images[0].shape[0]
    max_w = max(im.shape[1] for im in images)
    max_w = int(np.ceil(max_w / multiple) * multiple)
    arr = np.zeros((n, 1, h, max_w), dtype=np.float32)
    widths = np.zeros(n, dtype=np.int64)
    for i, im in enumerate(images):
        x = im.astype(np.float32) / 255.0 if im.dtype == np.uint8 else im
        arr[i, 0, :, : x.shape[1]] = x
        widths[i] = x.shape[1]
    if charset is not None:
        encoded = [charset.encode(t, sid) for t, sid in zip(texts, ids)]
        targets = torch.tensor([c for e in encoded for c in e], dtype=torch.long)
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    else:
        targets = torch.zeros(0, dtype=torch.long)
        lengths = torch.zeros(n, dtype=torch.long)
    return Batch(torch.from_numpy(arr), torch.from_numpy(widths), targets, lengths, list(texts), list(ids))


def iterate_batches(
    images: Sequence[np.ndarray],
    texts: Sequence[str],
    ids: Sequence[str],
    batch_size: int,
    charset: Charset | None = None,
) -> Iterator[Batch]:
    """Evaluation batches (width-sorted, fixed order)."""
    for idx in bucket_batches([im.shape[1] for im in images], batch_size, max_spread=MAX_WIDTH_SPREAD):
        yield collate([images[i] for i in idx], [texts[i] for i in idx], [ids[i] for i in idx], charset)
