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
``htrlab.train.segmenter.train_segmenter`` trains one; the bundled weights (``weights/htrlab-lines.safetensors``) were trained on
the 240 Hooker training pages (docs/RESULTS.md, "Pages").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from htrlab.errors import CheckpointError

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
    """Write ``det`` in htrlab's checkpoint format (``kind: line-detector``) with its sizes and ``extra``
    training facts."""
    from htrlab.models.checkpoint import save_weights

    meta = {
        "width": det.net.width,
        "canon_char_h": det.canon_char_h,
        "threshold": det.threshold,
        "core_ratio": CORE_RATIO,
        "training": extra or {},
    }
    return save_weights(path, det.net.state_dict(), "line-detector", meta)


_CACHE: dict[str, LineDetector] = {}


def load_detector(path: str | Path | None = None) -> LineDetector:
    """The line detector stored at ``path`` (default: the bundled one); loaded once per process.

    Raises:
        CheckpointError: a missing, damaged or foreign file, or weights that do not fit, naming the file.
    """
    from htrlab.models.checkpoint import load_weights

    p = Path(path) if path is not None else BUNDLED
    key = str(p.resolve())
    if key in _CACHE:
        return _CACHE[key]
    meta, state = load_weights(p, "line-detector")
    try:
        width = int(meta["width"])
        if not 1 <= width <= 256:
            raise ValueError(f"width {width} is outside 1-256")
        net = CoreNet(width)
        net.load_state_dict(state)
        det = LineDetector(net, float(meta["canon_char_h"]), float(meta["threshold"]))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: not a usable line detector ({str(exc).splitlines()[0]})") from exc
    net.eval()
    _CACHE[key] = det
    return det
