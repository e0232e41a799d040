"""The one preprocessing function used by training, evaluation and recognition alike.

A mismatch between how training and recognition prepare images is the classic reason a model reads user
images as garbage, so every path in htrlab goes through :func:`preprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from htrlab.errors import ConfigError, DataError


@dataclass
class PreprocessConfig:
    """How a grayscale line image becomes model input."""

    height: int = 64  # output height in pixels; the aspect ratio is kept
    min_width: int = 32  # narrower images are padded with background up to this width
    max_width: int = 2400  # wider images are squeezed horizontally to this width
    pad: int = 8  # background columns added left and right (room for CTC at the edges)
    normalize: bool = True  # background flattening + contrast stretch
    resize: str = "height"  # "height": keep the aspect ratio; "square": squash to height x height (TrOCR)
    # removed options, at the value older files hold them (htrlab.config.from_dict)
    RETIRED: ClassVar[dict[str, Any]] = {"width_scale": 1.0}

    def __post_init__(self) -> None:
        if self.resize not in ("height", "square"):
            raise ConfigError(f"preprocess.resize must be 'height' or 'square', got {self.resize!r}")
        if not 8 <= self.height <= 512:
            raise ConfigError(f"preprocess.height must be in 8..512, got {self.height}")
        if self.min_width < 1 or self.max_width < self.min_width:
            raise ConfigError(
                f"preprocess widths: need 1 <= min_width <= max_width, got {self.min_width}, {self.max_width}"
            )
        if self.pad < 0:
            raise ConfigError(f"preprocess.pad must be >= 0, got {self.pad}")


def normalize_contrast(gray: np.ndarray) -> np.ndarray:
    """Flatten uneven paper and stretch contrast; returns float32 "inkness" in [0, 1] (1 = ink, 0 = paper).

    The background is estimated by a grey-level closing (a max filter removes dark strokes) followed by a
    blur, so stains and lighting gradients are divided out before the contrast stretch.
    """
    g = gray.astype(np.float32)
    h = g.shape[0]
    k = max(3, (h // 2) | 1)
    bg = cv2.dilate(g, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.blur(bg, (k, k))
    ratio = np.clip(g / np.maximum(bg, 1.0), 0.0, 1.0)  # 1 = paper, darker = ink
    ink = 1.0 - ratio
    hi = float(np.percentile(ink, 99.5))
    if hi < 0.05:  # blank or nearly blank image: keep it faint rather than amplifying noise
        hi = 1.0
    lo = float(np.percentile(ink, 50))
    out = np.clip((ink - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    return out.astype(np.float32)


def preprocess(gray: np.ndarray, cfg: PreprocessConfig, sample_id: str = "") -> np.ndarray:
    """Grayscale uint8 line image (H, W) -> float32 model input (cfg.height, W'), ink = 1, paper = 0.

    Steps: resize to ``cfg.height`` keeping the aspect ratio, flatten the background
    and stretch contrast, squeeze to ``max_width`` if wider, pad to ``min_width`` if narrower, then add ``pad``
    columns each side.
    With ``cfg.resize == "square"`` (TrOCR-style encoders) the line is squashed to ``height x height`` instead.

    Raises:
        DataError: for an empty or non-2-D image (naming ``sample_id``).
    """
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_RGB2GRAY) if gray.shape[2] == 3 else gray[..., 0]
    if gray.ndim != 2 or gray.size == 0 or min(gray.shape) < 1:
        raise DataError(f"sample {sample_id}: cannot preprocess an image of shape {gray.shape}")
    h, w = gray.shape
    if cfg.resize == "square":
        interp = cv2.INTER_AREA if h > cfg.height else cv2.INTER_LINEAR
        square = cv2.resize(gray, (cfg.height, cfg.height), interpolation=interp)
        return normalize_contrast(square) if cfg.normalize else (255.0 - square.astype(np.float32)) / 255.0
    new_w = max(1, round(w * cfg.height / h))
    new_w = min(new_w, cfg.max_width)
    interp = cv2.INTER_AREA if h > cfg.height else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_w, cfg.height), interpolation=interp)
    x = normalize_contrast(resized) if cfg.normalize else (255.0 - resized.astype(np.float32)) / 255.0
    width = max(new_w, cfg.min_width)
    out = np.zeros((cfg.height, width + 2 * cfg.pad), dtype=np.float32)
    out[:, cfg.pad : cfg.pad + new_w] = x
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Model input in [0, 1] -> uint8 for compact caching."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_display(x: np.ndarray) -> np.ndarray:
    """Model input -> a viewable uint8 image (dark ink on white paper)."""
    return 255 - to_uint8(x)
