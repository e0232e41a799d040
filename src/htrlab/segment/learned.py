"""A learned line detector: a small fully convolutional network that marks each text line's *core*, the band
just above its baseline where the line's own small letters are.

Why cores: a line's outline overlaps its neighbours' ascenders and descenders, but the cores of two lines never
touch, so each connected component of the predicted core map is one line, even where the smearing of the
classical method (``htrlab.segment.lines``) runs two rows of writing together or swallows a word written
between the lines. The rest of the pipeline is shared with the classical method: every ink component goes to
the nearest core, and a line's outline and baseline are fitted to its own ink.

Scale: the network sees the page with its characters at a fixed height (``CANON_CHAR_H`` pixels, the character
height measured as in the classical method), so it adapts to the image's resolution as the classical method
does. Its input is the paper-normalised ink level (``ink_level``), so illumination and paper colour do not
matter.

Training data are pages with line baselines (PAGE-XML, e.g. the Hooker letters): the target core of a line is
its baseline drawn ``CORE_RATIO`` of the page's line spacing thick, on the upper side.
``train_segmenter`` trains one; the bundled weights (``weights/htrlab-lines.safetensors``) were trained on
the 240 Hooker training pages (docs/RESULTS.md, "Pages").
"""

from __future__ import annotations

import json
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
from torch import nn
from torch.nn import functional as F

from htrlab.errors import CheckpointError, DataError
from htrlab.train.state import load_state, save_state

if TYPE_CHECKING:
    from htrlab.synth.render import FontInfo

CANON_CHAR_H = 10.0  # character height (pixels) at the network's input
CORE_RATIO = 0.25  # a target core is this fraction of the page's line spacing thick
BUNDLED = Path(__file__).resolve().parent.parent / "weights" / "htrlab-lines.safetensors"


def _block(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CoreNet(nn.Module):
    """A small U-Net: ink level (N, 1, H, W) -> core logits (N, 1, H, W). A stride-2 stem (cores are several
    pixels thick at the canonical scale, so half resolution is enough and costs a quarter), then three more
    scales with dilated convolutions at the coarsest (1/16) for a receptive field of many character heights;
    the logits of the half-resolution decoder are upsampled. H and W need not be multiples of 16."""

    def __init__(self, width: int = 12) -> None:
        super().__init__()
        c = [width, 2 * width, 4 * width, 6 * width]
        self.stem = nn.Sequential(
            nn.Conv2d(1, c[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c[0]),
            nn.ReLU(inplace=True),
            _block(c[0], c[0]),
        )
        self.e1 = nn.Sequential(_block(c[0], c[1]), _block(c[1], c[1]))
        self.e2 = nn.Sequential(_block(c[1], c[2]), _block(c[2], c[2]))
        self.e3 = nn.Sequential(_block(c[2], c[3]), _block(c[3], c[3], 2), _block(c[3], c[3], 4))
        self.d2 = _block(c[3] + c[2], c[2])
        self.d1 = _block(c[2] + c[1], c[1])
        self.d0 = _block(c[1] + c[0], c[0])
        self.head = nn.Conv2d(c[0], 1, 1)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 16, (-w) % 16
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        s0 = self.stem(x)
        s1 = self.e1(F.max_pool2d(s0, 2))
        s2 = self.e2(F.max_pool2d(s1, 2))
        s3 = self.e3(F.max_pool2d(s2, 2))
        u = self.d2(torch.cat([F.interpolate(s3, size=s2.shape[-2:]), s2], 1))
        u = self.d1(torch.cat([F.interpolate(u, size=s1.shape[-2:]), s1], 1))
        u = self.d0(torch.cat([F.interpolate(u, size=s0.shape[-2:]), s0], 1))
        logits = F.interpolate(self.head(u), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :h, :w]


def core_target(
    shape: tuple[int, int], baselines: Sequence[np.ndarray], spacing: float, scale: float = 1.0
) -> np.ndarray:
    """The target core map (uint8 0/1) of a page of ``shape``: each baseline (page coordinates, multiplied by
    ``scale``) drawn ``CORE_RATIO * spacing * scale`` thick on its upper side."""
    out = np.zeros(shape, np.uint8)
    thick = max(2, round(CORE_RATIO * spacing * scale))
    for b in baselines:
        pts = np.asarray(b, dtype=np.float64).reshape(-1, 2) * scale
        if len(pts) < 2:
            continue
        pts = pts[np.argsort(pts[:, 0], kind="stable")]
        # fill the band between the baseline and the baseline moved up by the thickness
        upper = pts - [0.0, thick]
        poly = np.concatenate([pts, upper[::-1]])
        cv2.fillPoly(out, [np.round(poly).astype(np.int32)], 1)
    return out


@dataclass
class LineDetector:
    """A trained ``CoreNet`` with its settings; ``cores(ink, char_h)`` -> core probability map."""

    net: CoreNet
    canon_char_h: float = CANON_CHAR_H
    threshold: float = 0.5

    @torch.no_grad()
    def cores(self, ink: np.ndarray, char_h: float) -> np.ndarray:
        """Core probabilities (float32, the shape of ``ink``) for an ink-level image whose characters are
        ``char_h`` pixels high."""
        s = self.canon_char_h / max(char_h, 1.0)
        h, w = ink.shape
        nh, nw = max(8, round(h * s)), max(8, round(w * s))
        small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        self.net.eval()
        logits = self.net(torch.from_numpy(np.ascontiguousarray(small))[None, None])
        prob = torch.sigmoid(logits)[0, 0].numpy()
        out: np.ndarray = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        return out


def save_detector(det: LineDetector, path: str | Path, extra: dict[str, object] | None = None) -> Path:
    from safetensors.torch import save_file

    meta = {
        "kind": "htrlab-line-detector",
        "width": str(det.net.width),
        "canon_char_h": str(det.canon_char_h),
        "threshold": str(det.threshold),
        "core_ratio": str(CORE_RATIO),
        "extra": json.dumps(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in det.net.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


_CACHE: dict[str, LineDetector] = {}


def load_detector(path: str | Path | None = None) -> LineDetector:
    """The line detector stored at ``path`` (default: the bundled one); loaded once per process."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    p = Path(path) if path is not None else BUNDLED
    key = str(p.resolve())
    if key in _CACHE:
        return _CACHE[key]
    if not p.is_file():
        raise DataError(f"{p}: no line detector weights here")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(p))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise DataError(f"{p}: not a readable safetensors file ({exc})") from exc
    if meta.get("kind") != "htrlab-line-detector":
        raise DataError(f"{p}: not an htrlab line detector (metadata kind {meta.get('kind')!r})")
    net = CoreNet(int(meta["width"]))
    net.load_state_dict(state)
    net.eval()
    det = LineDetector(net, float(meta["canon_char_h"]), float(meta["threshold"]))
    _CACHE[key] = det
    return det


# ---------------------------------------------------------------------------------------------------------
# training


@dataclass
class _Page:
    name: str
    ink: np.ndarray  # uint8 ink level x 255, characters CANON_CHAR_H high
    target: np.ndarray  # uint8 0/1 cores at the same resolution


def prepare_page(xml: str | Path, work_side: int = 1600) -> _Page:
    """A PAGE-XML page with baselines as training material (see ``prepare_lines``)."""
    from htrlab.data.images import load_gray
    from htrlab.data.readers.pagexml import read_page_file

    samples = read_page_file(xml)
    baselines = [s.baseline for s in samples if s.baseline is not None and len(s.baseline) >= 2]
    if not samples or not baselines:
        raise DataError(f"{xml}: no line baselines to learn from")
    return prepare_lines(load_gray(samples[0].image_path), baselines, str(xml), work_side)


def prepare_lines(
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


def synthetic_page(
    rng: np.random.Generator, fonts: Sequence[FontInfo], corpus: Sequence[str]
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[str]]:
    """A rendered page (grey), its lines' baselines, outlines (the text's box) and texts: lines of ``corpus`` text in one of ``fonts``
    (``htrlab.synth.render.FontInfo``), at a random size, spacing, margin and indentation, with now and then a
    short line at the right (a date or a signature), on shaded, noisy paper. Pillow's baseline anchor gives
    the exact baselines. For a line detector that is not tied to one collection's hand and layout."""
    from PIL import Image, ImageDraw, ImageFont

    W, H = int(rng.integers(900, 1700)), int(rng.integers(700, 2100))
    paper, ink = int(rng.integers(190, 250)), int(rng.integers(0, 100))
    info = fonts[int(rng.integers(len(fonts)))]
    size = int(rng.integers(16, 50))
    font = ImageFont.truetype(str(info.path), size)
    spacing = size * float(rng.uniform(1.15, 2.6))
    im = Image.new("L", (W, H), paper)
    draw = ImageDraw.Draw(im)
    left = int(W * rng.uniform(0.03, 0.18))
    right = W - int(W * rng.uniform(0.03, 0.12))
    baselines: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    texts: list[str] = []
    y = float(rng.uniform(0.05, 0.2) * H) + size
    words = " ".join(corpus[int(rng.integers(len(corpus)))] for _ in range(40)).split()
    w_i = 0
    while y < H - size and w_i < len(words) - 1:
        x = left + (int(rng.integers(0, 5)) * size if rng.random() < 0.2 else 0)
        limit = right if rng.random() < 0.8 else int(x + (right - x) * rng.uniform(0.2, 0.9))
        if rng.random() < 0.08:  # a short line at the right: date, place, signature
            x, limit = int(right - (right - left) * rng.uniform(0.2, 0.4)), right
        line = ""
        while w_i < len(words):
            cand = (line + " " + words[w_i]).strip()
            if info.caps_only:
                cand = cand.upper()
            if draw.textlength(cand, font=font) > limit - x and line:
                break
            line = cand
            w_i += 1
        if not line:
            break
        draw.text((x, y), line, fill=ink, font=font, anchor="ls")
        baselines.append(np.array([[x, y], [x + draw.textlength(line, font=font), y]], dtype=np.float64))
        bx0, by0, bx1, by1 = draw.textbbox((x, y), line, font=font, anchor="ls")
        boxes.append(np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]], dtype=np.float64))
        texts.append(line)
        y += spacing * (
            float(rng.uniform(1.6, 2.2)) if rng.random() < 0.1 else 1.0
        )  # a paragraph gap now and then
    arr = np.asarray(im, dtype=np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    shade = 1.0 - float(rng.uniform(0, 0.35)) * (xx / W if rng.random() < 0.5 else yy / H)
    arr = arr * shade + rng.normal(0, float(rng.uniform(1, 8)), arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8), baselines, boxes, texts


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
            pages.append(prepare_lines(gray, baselines, f"synthetic-{i}"))
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
