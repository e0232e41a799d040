"""The augmentation of :mod:`htrlab.data.augment` on a whole batch of tensors, where the batch lives (a GPU, for
training from data resident there): the same operations, drawn from the same ranges with the same
probabilities, so a model trained either way sees lines distorted alike (``tests/test_augment_torch.py``
compares the two).

One sampling grid does the affine part (shear, rotation, stretch) and the elastic displacement together
(``grid_sample``); erosion and dilation are max-pooling; blur is one grouped convolution with a kernel per line;
noise is added inside each line's own width only. Random numbers come from a ``torch.Generator`` on the CPU
(a few per line), so a run is reproducible whatever the device.

Not here: ``augment.damage`` (the ``htrlab degrade`` operations are NumPy/OpenCV code) and ``keep_size``
(square inputs); :func:`supports` says whether a configuration can run here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from htrlab.data.augment import AugmentConfig


def supports(cfg: AugmentConfig, square: bool = False) -> bool:
    """Whether :func:`augment_batch` does all that ``cfg`` asks for."""
    return not cfg.damage.ops and not square


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def augment_batch(
    x: torch.Tensor,
    widths: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator,
    noise_gen: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch of preprocessed lines.

    Args:
        x: (B, 1, H, W) float, ink = 1, paper and padding = 0; line ``i`` fills its first ``widths[i]`` columns.
        widths: (B,) the lines' widths.
        cfg: which operations and how strong (``augment`` settings; see :func:`supports`).
        gen: a CPU generator, for every random choice.
        noise_gen: a generator on ``x``'s device for the pixel noise (default: ``gen`` on the CPU, the
            device's default generator elsewhere), so that no image-sized tensor crosses to the device.

    Returns:
        The augmented batch (B, 1, H, W') and the new widths (a stretch or slant changes them; W' is the widest).
    """
    if not cfg.enabled:
        return x, widths
    dev = x.device
    b, _, h, w_in = x.shape
    f = h / cfg.ref_height if cfg.ref_height > 0 else 1.0
    wid = widths.detach().to("cpu", torch.float64)

    def coin() -> torch.Tensor:
        return torch.rand(b, generator=gen, dtype=torch.float64) < cfg.p

    # affine: x' = A x + t, A = [[sx, shear], [0, 1]] @ R(angle), about the line's centre
    do_affine = coin() & torch.tensor(bool(cfg.slant or cfg.rotate or cfg.scale))
    shear = torch.where(do_affine, _uniform(gen, b, -cfg.slant, cfg.slant), 0.0)
    angle = torch.where(
        do_affine,
        torch.deg2rad(_uniform(gen, b, -cfg.rotate, cfg.rotate)),
        torch.zeros(b, dtype=torch.float64),
    )
    sx = torch.where(do_affine, 1.0 + _uniform(gen, b, -cfg.scale, cfg.scale), 1.0)
    new_w = torch.where(do_affine, torch.clamp(torch.round(wid * sx + shear.abs() * h), min=8), wid)
    c, s = torch.cos(angle), torch.sin(angle)
    a = torch.stack([torch.stack([sx * c + shear * s, -sx * s + shear * c], -1), torch.stack([s, c], -1)], -2)
    centre_in = torch.stack([wid / 2, torch.full_like(wid, h / 2)], -1)
    centre_out = torch.stack([new_w / 2, torch.full_like(wid, h / 2)], -1)
    a_inv = torch.linalg.inv(a)  # output pixel -> input pixel: A^-1 (p - centre_out) + centre_in
    w_out = int(new_w.max().item())

    # elastic: a smooth displacement (coarse uniform noise upsampled), in output pixels
    do_elastic = coin() & torch.tensor(cfg.elastic > 0)
    gh, gw = max(2, h // 16), max(2, w_out // 16)
    amp = cfg.elastic * f
    coarse = (torch.rand(b, 2, gh, gw, generator=gen) * 2 - 1) * amp * do_elastic.float()[:, None, None, None]
    disp = F.interpolate(coarse.to(dev), size=(h, w_out), mode="bicubic", align_corners=False)

    ys, xs = torch.meshgrid(
        torch.arange(h, device=dev, dtype=torch.float32),
        torch.arange(w_out, device=dev, dtype=torch.float32),
        indexing="ij",
    )
    px = xs[None] + disp[:, 0]  # (B, H, W')
    py = ys[None] + disp[:, 1]
    m = a_inv.to(dev, torch.float32)
    co = centre_out.to(dev, torch.float32)
    ci = centre_in.to(dev, torch.float32)
    qx = m[:, 0, 0, None, None] * (px - co[:, 0, None, None]) + m[:, 0, 1, None, None] * (
        py - co[:, 1, None, None]
    )
    qy = m[:, 1, 0, None, None] * (px - co[:, 0, None, None]) + m[:, 1, 1, None, None] * (
        py - co[:, 1, None, None]
    )
    qx = qx + ci[:, 0, None, None]
    qy = qy + ci[:, 1, None, None]
    # each line samples only its own columns: beyond them is paper (as cv2.warpAffine's border of 0)
    inside = (qx > -1) & (qx < wid.to(dev, torch.float32)[:, None, None])
    grid = torch.stack([(2 * qx + 1) / w_in - 1, (2 * qy + 1) / h - 1], -1)
    y = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = y * inside[:, None].float()

    # erosion / dilation by a k x k square (k = 2 at the reference height)
    do_morph = coin() & torch.tensor(bool(cfg.morph))
    dilate = torch.rand(b, generator=gen) < 0.5
    if bool(do_morph.any()):
        k = 1 + max(1, round(f))
        lo, hi = k // 2, (k - 1) // 2  # OpenCV anchors a k x k kernel at its centre, (k // 2, k // 2)
        padded = F.pad(y, (lo, hi, lo, hi))
        grown = F.max_pool2d(padded, k, stride=1)
        shrunk = -F.max_pool2d(F.pad(-y, (lo, hi, lo, hi), value=-1.0), k, stride=1)
        pick = torch.where(dilate.to(dev)[:, None, None, None], grown, shrunk)
        y = torch.where(do_morph.to(dev)[:, None, None, None], pick, y)

    # Gaussian blur, a sigma per line (one grouped convolution)
    do_blur = coin() & torch.tensor(cfg.blur > 0)
    sigma = torch.where(do_blur, _uniform(gen, b, 0.3, max(cfg.blur, 0.3)) * f, 0.0)
    if bool(do_blur.any()):
        r = math.ceil(3 * float(sigma.max()))
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        g = torch.exp(-(t[None] ** 2) / (2 * torch.clamp(sigma, min=1e-3)[:, None] ** 2))
        g = torch.where(do_blur[:, None], g / g.sum(1, keepdim=True), (t[None] == 0).double())
        g = g.to(dev, torch.float32)
        flat = y.reshape(1, b, h, w_out)
        flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="replicate"), g[:, None, None, :], groups=b)
        flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="replicate"), g[:, None, :, None], groups=b)
        y = flat.reshape(b, 1, h, w_out)

    do_noise = coin() & torch.tensor(cfg.noise > 0)
    std = torch.where(do_noise, _uniform(gen, b, 0.0, cfg.noise), 0.0).to(dev, torch.float32)
    if noise_gen is None and dev.type != "cpu":
        noise = torch.randn(b, 1, h, w_out, device=dev)
    else:
        noise = torch.randn(b, 1, h, w_out, generator=noise_gen or gen, device=dev)
    y = y + noise * std[:, None, None, None]
    within = torch.arange(w_out, device=dev)[None] < new_w.to(dev)[:, None]
    y = torch.clamp(y, 0.0, 1.0) * within[:, None, None, :].float()
    return y.to(x.dtype), new_w.to(widths.device, widths.dtype)
