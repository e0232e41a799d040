"""Training the learned line detector (:mod:`htrlab.segment.learned`) on pages with line baselines: PAGE-XML
pages (the Hooker letters) and rendered ones (:func:`htrlab.synth.pages.synthetic_page`). The weights go in
htrlab's checkpoint format (``kind: line-detector``), the optimiser's state beside them for ``resume``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from htrlab.errors import CheckpointError, DataError
from htrlab.segment.learned import CANON_CHAR_H, CoreNet, LineDetector, core_target, save_detector
from htrlab.synth.pages import synthetic_page
from htrlab.train.state import load_state, save_state

if TYPE_CHECKING:
    from htrlab.synth.render import FontInfo


@dataclass
class _Page:
    name: str
    ink: np.ndarray  # uint8 ink level x 255, characters CANON_CHAR_H high
    target: np.ndarray  # uint8 0/1 cores at the same resolution


def prepare_page(xml: str | Path, work_side: int = 1600) -> _Page:
    """A PAGE-XML page with baselines as training material (see ``prepare_gray_page``)."""
    from htrlab.data.images import load_gray
    from htrlab.data.readers.pagexml import read_page_file

    samples = read_page_file(xml)
    baselines = [s.baseline for s in samples if s.baseline is not None and len(s.baseline) >= 2]
    if not samples or not baselines:
        raise DataError(f"{xml}: no line baselines to learn from")
    return prepare_gray_page(load_gray(samples[0].image_path), baselines, str(xml), work_side)


def prepare_gray_page(
    gray: np.ndarray, baselines: Sequence[np.ndarray], name: str, work_side: int = 1600
) -> _Page:
    """A page image and its line baselines as training material: its ink level and core target scaled so
    that its characters (measured at the analysis resolution of ``segment_lines``) are ``CANON_CHAR_H``
    high."""
    from htrlab.data.linecrop import line_spacing
    from htrlab.segment.lines import analysis_view

    scale, level, _, char_h = analysis_view(gray, work_side)
    if char_h <= 0:
        raise DataError(f"{name}: no ink found on the page image")
    spacing = line_spacing(baselines) or 3.0 * char_h / scale
    s = CANON_CHAR_H / char_h
    ink = cv2.resize(level, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    target = core_target(ink.shape, baselines, spacing, scale * s)
    return _Page(name, (ink * 255).astype(np.uint8), target)


def _sample(page: _Page, rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A random crop (ink float, target float) at the canonical character height, jittered in scale (0.75 to
    1.33), rotation (within 3 degrees), contrast, blur and noise."""
    oh, ow = size
    s = math.exp(rng.uniform(math.log(0.75), math.log(1.33)))
    angle = rng.uniform(-3.0, 3.0)
    h, w = page.ink.shape
    # centre of the crop in the page, chosen on ink half of the time
    if rng.random() < 0.5:
        ys, xs = np.nonzero(page.target[::4, ::4])
        if len(xs):
            k = rng.integers(len(xs))
            cx, cy = xs[k] * 4.0, ys[k] * 4.0
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    m = cv2.getRotationMatrix2D((cx, cy), angle, s)
    m[0, 2] += ow / 2 - cx
    m[1, 2] += oh / 2 - cy
    ink = cv2.warpAffine(page.ink, m, (ow, oh), flags=cv2.INTER_LINEAR)
    tgt = cv2.warpAffine(page.target * 255, m, (ow, oh), flags=cv2.INTER_LINEAR)
    x = ink.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.6, 1.3), 0, 1)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.0))
    x = np.clip(x + rng.normal(0, 0.03, x.shape).astype(np.float32), 0, 1)
    y = (tgt > 127).astype(np.float32)
    # no mirroring: letters show through from the back of a page mirrored, and are not lines to read
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice (cores are a small part of a page)."""
    bce = F.binary_cross_entropy_with_logits(logits, y)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    return bce + dice


def train_segmenter(
    train_xml: Sequence[str | Path],
    out: str | Path,
    val_xml: Sequence[str | Path] = (),
    steps: int = 3000,
    batch_size: int = 8,
    crop: tuple[int, int] = (192, 320),
    lr: float = 2e-3,
    width: int = 12,
    seed: int = 0,
    eval_every: int = 250,
    synthetic: int = 0,
    fonts: Sequence[FontInfo] = (),
    corpus: Sequence[str] = (),
    resume: bool = False,
    log: Callable[[str], object] = print,
) -> Path:
    """Train a ``CoreNet`` on PAGE-XML pages with baselines; write ``out`` (safetensors, the weights of the
    lowest validation loss when ``val_xml`` is given, else the last) and ``out`` + ``.state.safetensors`` (the
    optimiser's state, for ``resume``). AdamW, one-cycle schedule over ``steps``. ``synthetic`` rendered pages
    (``synthetic_page`` with ``fonts`` and ``corpus``) join the training pages."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out)
    t0 = time.perf_counter()
    pages = [prepare_page(x) for x in train_xml]
    if synthetic:
        srng = np.random.default_rng(seed + 1)
        for i in range(synthetic):
            gray, baselines, _, _ = synthetic_page(srng, fonts, corpus)
            pages.append(prepare_gray_page(gray, baselines, f"synthetic-{i}"))
    vals = [prepare_page(x) for x in val_xml]
    log(
        f"{len(pages)} training pages, {len(vals)} validation pages prepared in {time.perf_counter() - t0:.0f} s"
    )
    net = CoreNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    state_path = out.with_name(out.name + ".state.safetensors")
    step, best = 0, math.inf
    if resume and out.with_name(out.name + ".state.pt").is_file() and not state_path.is_file():
        load_state(out.with_name(out.name + ".state.pt"))  # raises why a pickled state is not loaded
    if resume and state_path.is_file():
        st = load_state(state_path)
        try:
            net.load_state_dict(st["net"])
            opt.load_state_dict(st["opt"])
            step, best = int(st["step"]), float(st["best"])
            rng = np.random.default_rng()
            rng.bit_generator.state = st["rng"]
            torch.set_rng_state(st["torch_rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{state_path}: does not fit this line detector ({exc})") from exc
        log(f"resumed at step {step}")
    # the schedule is rebuilt for ``steps`` and moved on to ``step``: a resumed run may be given more steps
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(steps, step + 1), pct_start=0.1
    )
    if step:
        sched.last_epoch = step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # get_lr outside step() warns; here it is meant
            for group, value in zip(opt.param_groups, sched.get_lr()):
                group["lr"] = value
    vrng = np.random.default_rng(12345)
    vbatches = [[_sample(p, vrng, crop) for p in vals] for _ in range(2)] if vals else []
    tick = time.perf_counter()
    while step < steps:
        net.train()
        batch = [_sample(pages[rng.integers(len(pages))], rng, crop) for _ in range(batch_size)]
        x = torch.from_numpy(np.stack([b[0] for b in batch]))[:, None]
        y = torch.from_numpy(np.stack([b[1] for b in batch]))[:, None]
        loss = _loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % eval_every == 0 or step == steps:
            msg = f"step {step}/{steps} loss {loss.item():.4f} {(time.perf_counter() - tick) / eval_every:.2f} s/step"
            tick = time.perf_counter()
            det = LineDetector(net)
            if vbatches:
                net.eval()
                with torch.no_grad():
                    vl = float(
                        np.mean(
                            [
                                _loss(
                                    net(torch.from_numpy(np.stack([b[0] for b in vb]))[:, None]),
                                    torch.from_numpy(np.stack([b[1] for b in vb]))[:, None],
                                ).item()
                                for vb in vbatches
                            ]
                        )
                    )
                msg += f" val loss {vl:.4f}"
                if vl < best:
                    best = vl
                    save_detector(det, out, {"step": step, "val_loss": vl, "pages": len(pages)})
                    msg += " (best, saved)"
            else:
                save_detector(det, out, {"step": step, "pages": len(pages)})
            save_state(
                state_path,
                {
                    "net": net.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "best": best,
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                },
            )
            log(msg)
    return out
