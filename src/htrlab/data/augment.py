"""Training-time augmentation of preprocessed lines (float32, ink = 1), seeded by an explicit RNG."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from htrlab.errors import ConfigError


@dataclass
class DamageConfig:
    """Damage as augmentation (``augment.damage``): one of ``ops`` with probability ``p`` per line, at a random
    severity up to ``max_severity``; see ``htrlab degrade --list-ops``."""

    ops: list[str] = field(default_factory=list)  # [] = off; ["random"] composes 1-3 operations
    p: float = 0.3
    max_severity: int = 3

    def __post_init__(self) -> None:
        from htrlab.degrade import list_ops

        unknown = [o for o in self.ops if o not in list_ops()]
        if unknown:
            raise ConfigError(f"augment.damage.ops: unknown {unknown}; known: {', '.join(list_ops())}")
        if not 1 <= self.max_severity <= 5 or not 0 <= self.p <= 1:
            raise ConfigError("augment.damage: max_severity must be 1..5 and p in [0, 1]")


@dataclass
class AugmentConfig:
    """Which augmentations run, and how strongly. Each is applied with probability ``p`` independently."""

    enabled: bool = True
    p: float = 0.5  # probability of each operation
    slant: float = 0.3  # max horizontal shear (tan of the angle)
    rotate: float = 1.5  # max rotation in degrees
    scale: float = 0.15  # max relative change of width (stretch/squeeze)
    elastic: float = 2.0  # elastic displacement amplitude in pixels (0 = off)
    morph: bool = True  # erosion/dilation (thinner/thicker strokes)
    blur: float = 1.0  # max Gaussian blur sigma (0 = off)
    noise: float = 0.08  # max Gaussian noise std (0 = off)
    # > 0: elastic, blur and morph are given in pixels of a line this tall and scale with the actual line
    # height (so a model read at 96 px gets the distortions it got at 48); 0 = they are absolute pixels.
    # Square inputs (keep_size) ignore it: their height is the square's, not the line's.
    ref_height: int = 0
    damage: DamageConfig = field(default_factory=lambda: DamageConfig())  # htrlab.degrade operations

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"augment.p must be in [0, 1], got {self.p}")
        if self.ref_height < 0:
            raise ConfigError(f"augment.ref_height must be >= 0 (0 = off), got {self.ref_height}")


def _affine(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    h, w = x.shape
    shear = rng.uniform(-cfg.slant, cfg.slant)
    angle = np.deg2rad(rng.uniform(-cfg.rotate, cfg.rotate))
    sx = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    # x' = sx*x + shear*(y - h/2), then a small rotation about the centre.
    c, s = np.cos(angle), np.sin(angle)
    a = np.array([[sx, shear], [0.0, 1.0]]) @ np.array([[c, -s], [s, c]])
    new_w = max(8, round(w * sx + abs(shear) * h))
    centre_in = np.array([w / 2, h / 2])
    centre_out = np.array([new_w / 2, h / 2])
    t = centre_out - a @ centre_in
    m = np.hstack([a, t[:, None]]).astype(np.float32)
    return cv2.warpAffine(x, m, (new_w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def elastic_field(x: np.ndarray, rng: np.random.Generator, amp: float) -> np.ndarray:
    """Smooth random displacement of a float image (H, W) by up to ``amp`` pixels."""
    h, w = x.shape
    # Smooth random displacement fields: coarse noise upsampled (cheap, no per-pixel Gaussian filtering).
    gh, gw = max(2, h // 16), max(2, w // 16)
    dx = cv2.resize(
        rng.uniform(-amp, amp, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    dy = cv2.resize(
        rng.uniform(-amp, amp, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(x, gx + dx, gy + dy, interpolation=cv2.INTER_LINEAR, borderValue=0.0)


def augment(
    x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, keep_size: bool = False
) -> np.ndarray:
    """Augment one preprocessed line (H, W) float32 in [0, 1]; the height is kept, the width may change.

    Args:
        x: preprocessed line, ink = 1.
        rng: the generator that makes the run reproducible.
        cfg: which operations and how strong.
        keep_size: give the result the input's shape again (square inputs of TrOCR-style encoders, whose
            size is fixed; a slant or stretch then squeezes the line back into the square).
    """
    if not cfg.enabled:
        return x
    if keep_size:
        y = augment(x, rng, replace(cfg, ref_height=0))
        if y.shape == x.shape:
            return y
        return cv2.resize(y, (x.shape[1], x.shape[0]), interpolation=cv2.INTER_AREA)
    f = x.shape[0] / cfg.ref_height if cfg.ref_height > 0 else 1.0
    y = x
    if cfg.damage.ops and rng.random() < cfg.damage.p:
        from htrlab.degrade import apply_op

        op = cfg.damage.ops[int(rng.integers(len(cfg.damage.ops)))]
        severity = int(rng.integers(1, cfg.damage.max_severity + 1))
        # damage operations work on dark ink on light paper; model input is ink = 1 on 0
        y = 1.0 - apply_op(np.ascontiguousarray(1.0 - y, dtype=np.float32), op, severity, rng)
    if rng.random() < cfg.p and (cfg.slant or cfg.rotate or cfg.scale):
        y = _affine(y, rng, cfg)
    if cfg.elastic > 0 and rng.random() < cfg.p:
        y = elastic_field(y, rng, cfg.elastic * f)
    if cfg.morph and rng.random() < cfg.p:
        k = 1 + max(1, round(f))  # 2x2 (one pixel thicker or thinner) at the reference height
        kernel = np.ones((k, k), np.uint8)
        y = cv2.dilate(y, kernel) if rng.random() < 0.5 else cv2.erode(y, kernel)
    if cfg.blur > 0 and rng.random() < cfg.p:
        y = cv2.GaussianBlur(y, (0, 0), sigmaX=float(rng.uniform(0.3, cfg.blur) * f))
    if cfg.noise > 0 and rng.random() < cfg.p:
        y = y + rng.normal(0.0, rng.uniform(0.0, cfg.noise), y.shape).astype(np.float32)
    return np.clip(y, 0.0, 1.0).astype(np.float32)
