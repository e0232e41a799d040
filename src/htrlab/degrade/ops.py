"""Damage operations: pure functions ``(image, rng, severity) -> image``.

Images are dark ink on light paper, grayscale (H, W) or colour (H, W, 3), uint8 or float in [0, 1]; the
output has the input's shape, dtype and range. Each operation is deterministic for the same image, generator
state and severity, and each severity level 1..5 is defined by a measurable quantity (:data:`SEVERITY_TABLE`).
Lengths scale with the image height (relative to a 64-pixel line), so a severity means the same at any
resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from htrlab.errors import ConfigError

Op = Callable[[np.ndarray, np.random.Generator, int], np.ndarray]

# operation -> (quantity, values at severities 1..5)
SEVERITY_TABLE: dict[str, tuple[str, tuple[float, ...]]] = {
    "occlusion": (
        "share of ink pixels covered by paper-coloured rectangles and blobs",
        (0.05, 0.1, 0.2, 0.3, 0.4),
    ),
    "stain": ("share of the image under tinted ink blots and stains", (0.03, 0.06, 0.1, 0.15, 0.22)),
    "missing_strokes": ("share of ink pixels erased along the strokes", (0.08, 0.15, 0.25, 0.35, 0.5)),
    "fading": ("remaining ink contrast (1 = unchanged)", (0.7, 0.5, 0.35, 0.25, 0.15)),
    "blur_defocus": ("Gaussian sigma in pixels per 64 px of height", (0.6, 1.0, 1.6, 2.4, 3.4)),
    "blur_motion": ("motion kernel length in pixels per 64 px of height", (3, 5, 9, 13, 19)),
    "noise_gaussian": (
        "noise standard deviation (fraction of the grey range)",
        (0.03, 0.06, 0.1, 0.15, 0.22),
    ),
    "noise_salt_pepper": ("share of pixels set to black or white", (0.01, 0.025, 0.05, 0.08, 0.12)),
    "jpeg": ("JPEG quality", (60, 40, 25, 15, 8)),
    "low_resolution": (
        "scale the image is reduced to before restoring its size",
        (0.8, 0.6, 0.45, 0.35, 0.25),
    ),
    "bleed_through": ("opacity of the mirrored ghost of the writing", (0.1, 0.2, 0.3, 0.4, 0.55)),
    "cutoff": ("share of the height clipped at the top or bottom", (0.06, 0.12, 0.18, 0.25, 0.33)),
    "crease": ("number of fold lines (darkening 0.25, 2 px per 64 px wide)", (1, 1, 2, 3, 4)),
    "paper_texture": (
        "amplitude of low-frequency paper mottling (fraction of the grey range)",
        (0.04, 0.07, 0.1, 0.14, 0.2),
    ),
}


def _level(op: str, severity: int) -> float:
    if not 1 <= severity <= 5:
        raise ConfigError(f"severity must be 1..5, got {severity}")
    return float(SEVERITY_TABLE[op][1][severity - 1])


def _to_float(image: np.ndarray) -> tuple[np.ndarray, bool]:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0, True
    return image.astype(np.float32), False


def _back(x: np.ndarray, was_uint8: bool, dtype: np.dtype) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.round(x * 255.0).astype(np.uint8) if was_uint8 else x.astype(dtype)


def _gray(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=2) if x.ndim == 3 else x


def ink_mask(x: np.ndarray) -> np.ndarray:
    """Ink pixels of a float image (Otsu threshold on the grey levels)."""
    g = (np.clip(_gray(x), 0, 1) * 255).astype(np.uint8)
    _, m = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return m > 0


def _paper(x: np.ndarray) -> float:
    return float(np.percentile(_gray(x), 90))


def _scale(x: np.ndarray) -> float:
    return x.shape[0] / 64.0


def _blob(shape: tuple[int, int], rng: np.random.Generator, cy: float, cx: float, r: float) -> np.ndarray:
    """An irregular filled blob: a circle whose radius wobbles with angle."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = np.arctan2(yy - cy, xx - cx)
    k = rng.integers(2, 6)
    radius = r * (1 + 0.25 * np.sin(k * ang + rng.uniform(0, 6.28)) + 0.1 * np.sin((k + 3) * ang))
    return ((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2


def occlusion(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    target = _level("occlusion", s)
    ink = ink_mask(x)
    total = max(1, int(ink.sum()))
    covered = np.zeros(ink.shape, bool)
    h, w = ink.shape
    paper = _paper(x)
    ys, xs = np.nonzero(ink)
    for _ in range(200):
        if (covered & ink).sum() / total >= target or len(ys) == 0:
            break
        i = int(rng.integers(len(ys)))
        if rng.random() < 0.5:
            rh, rw = int(rng.uniform(0.2, 0.6) * h), int(rng.uniform(0.03, 0.12) * w + 4)
            y0, x0 = max(0, ys[i] - rh // 2), max(0, xs[i] - rw // 2)
            covered[y0 : y0 + rh, x0 : x0 + rw] = True
        else:
            covered |= _blob(ink.shape, rng, ys[i], xs[i], rng.uniform(0.1, 0.3) * h)
    out = x.copy()
    out[covered] = paper
    return out


def stain(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    target = _level("stain", s)
    h, w = x.shape[:2]
    area = np.zeros((h, w), bool)
    layer = np.zeros((h, w), np.float32)
    for _ in range(100):
        if area.mean() >= target:
            break
        r = rng.uniform(0.15, 0.6) * h
        b = _blob((h, w), rng, rng.uniform(0, h), rng.uniform(0, w), r)
        depth = rng.uniform(0.2, 0.6)  # translucent stains to opaque ink blots
        layer = np.maximum(layer, b * depth)
        area |= b
    layer = np.asarray(cv2.GaussianBlur(layer, (0, 0), max(0.5, 0.8 * _scale(x))), np.float32)
    out = x * (1 - layer[..., None] if x.ndim == 3 else 1 - layer)
    if x.ndim == 3:  # a brown tint for colour images
        tint = np.array([1.0, 0.85, 0.6], np.float32)
        out = out * (1 - 0.3 * layer[..., None]) + 0.3 * layer[..., None] * tint * out
    return out


def missing_strokes(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    target = _level("missing_strokes", s)
    ink = ink_mask(x)
    total = max(1, int(ink.sum()))
    erased = np.zeros(ink.shape, np.uint8)
    ys, xs = np.nonzero(ink)
    paper = _paper(x)
    r = max(1, round(3 * _scale(x)))
    for _ in range(2000):
        if len(ys) == 0 or ((erased > 0) & ink).sum() / total >= target:
            break
        for _ in range(10):
            i = int(rng.integers(len(ys)))
            cv2.circle(erased, (int(xs[i]), int(ys[i])), r, 1, -1)
    out = x.copy()
    out[(erased > 0) & ink] = paper
    return out


def fading(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    keep = _level("fading", s)
    paper = _paper(x)
    return paper + (x - paper) * keep


def blur_defocus(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), _level("blur_defocus", s) * _scale(x))


def blur_motion(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    n = max(3, round(_level("blur_motion", s) * _scale(x)) | 1)
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    m = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    k = np.asarray(cv2.warpAffine(k, m, (n, n)), np.float32)
    k /= max(k.sum(), 1e-6)
    return cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REPLICATE)


def noise_gaussian(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    return x + rng.normal(0, _level("noise_gaussian", s), x.shape).astype(np.float32)


def noise_salt_pepper(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    share = _level("noise_salt_pepper", s)
    out = x.copy()
    r = rng.random(x.shape[:2])
    out[r < share / 2] = 0.0
    out[(r >= share / 2) & (r < share)] = 1.0
    return out


def jpeg(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    q = int(_level("jpeg", s))
    u8 = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError("OpenCV could not encode JPEG")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if dec is None:
        raise RuntimeError("OpenCV could not decode its own JPEG")
    return dec.astype(np.float32) / 255.0


def low_resolution(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    f = _level("low_resolution", s)
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def bleed_through(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    alpha = _level("bleed_through", s)
    paper = _paper(x)
    ghost = np.flip(x, axis=1)
    shift = int(rng.integers(-x.shape[0] // 6, x.shape[0] // 6 + 1))
    ghost = np.roll(ghost, shift, axis=0)
    ghost = cv2.GaussianBlur(ghost, (0, 0), 1.2 * _scale(x))
    darkening = np.clip(paper - ghost, 0, 1) * alpha
    return x - darkening


def cutoff(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    share = _level("cutoff", s)
    h = x.shape[0]
    n = max(1, round(share * h))
    out = x.copy()
    if rng.random() < 0.5:
        out[:n] = _paper(x)
    else:
        out[h - n :] = _paper(x)
    return out


def crease(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    n = int(_level("crease", s))
    h, w = x.shape[:2]
    line = np.zeros((h, w), np.float32)
    thickness = max(1, round(2 * _scale(x)))
    for _ in range(n):
        if rng.random() < 0.7:  # mostly vertical folds across a line
            x0 = int(rng.integers(w))
            cv2.line(line, (x0 + int(rng.integers(-h // 4, h // 4 + 1)), 0), (x0, h - 1), 1.0, thickness)
        else:
            y0 = int(rng.integers(h))
            cv2.line(line, (0, y0), (w - 1, y0 + int(rng.integers(-3, 4))), 1.0, thickness)
    line = np.asarray(cv2.GaussianBlur(line, (0, 0), 0.7 * _scale(x)), np.float32)
    shade = 1 - 0.25 * line
    return x * (shade[..., None] if x.ndim == 3 else shade)


def paper_texture(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    amp = _level("paper_texture", s)
    h, w = x.shape[:2]
    field = np.zeros((h, w), np.float32)
    for cells, weight in ((4, 1.0), (12, 0.5), (40, 0.25)):
        small = rng.normal(0, 1, (max(2, h * cells // max(w, 1) + 2), cells)).astype(np.float32)
        field += weight * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    field *= amp / max(float(np.abs(field).max()), 1e-6)
    return x + (field[..., None] if x.ndim == 3 else field)


OPS: dict[str, Op] = {
    "occlusion": occlusion,
    "stain": stain,
    "missing_strokes": missing_strokes,
    "fading": fading,
    "blur_defocus": blur_defocus,
    "blur_motion": blur_motion,
    "noise_gaussian": noise_gaussian,
    "noise_salt_pepper": noise_salt_pepper,
    "jpeg": jpeg,
    "low_resolution": low_resolution,
    "bleed_through": bleed_through,
    "cutoff": cutoff,
    "crease": crease,
    "paper_texture": paper_texture,
}


def list_ops() -> list[str]:
    return [*OPS, "random"]


def apply_op(image: np.ndarray, op: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply operation ``op`` (or ``random``) at ``severity`` 1..5; dtype, range and shape are preserved.

    Raises:
        ConfigError: for an unknown operation or a severity outside 1..5.
    """
    if op == "random":
        return degrade_random(image, rng, severity)
    if op not in OPS:
        raise ConfigError(f"unknown damage operation '{op}'; known: {', '.join(list_ops())}")
    _level(op, severity)
    x, was_uint8 = _to_float(image)
    return _back(OPS[op](x, rng, severity), was_uint8, image.dtype)


def degrade_random(
    image: np.ndarray, rng: np.random.Generator, severity: int, n_ops: tuple[int, int] = (1, 3)
) -> np.ndarray:
    """Compose 1..3 random operations, each at a random severity up to ``severity``."""
    _level("fading", severity)
    names = list(OPS)
    k = int(rng.integers(n_ops[0], n_ops[1] + 1))
    out = image
    for i in rng.permutation(len(names))[:k]:
        out = apply_op(out, names[int(i)], int(rng.integers(1, severity + 1)), rng)
    return out
