"""Batch augmentation in torch (for data resident on a GPU) distorts lines as the CPU augmentation does."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from conftest import render_line
from htrlab.data.augment import AugmentConfig, DamageConfig, augment
from htrlab.data.augment_torch import augment_batch, supports
from htrlab.data.preprocess import PreprocessConfig, preprocess

TEXTS = ["seeds of kew", "many thanks", "a letter", "the garden", "kind regards", "jolly fox"]


def _lines(height: int = 48) -> list[np.ndarray]:
    cfg = PreprocessConfig(height=height, pad=4)
    return [preprocess(render_line(t, seed=i), cfg) for i, t in enumerate(TEXTS)]


def _batch(lines: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    w = max(x.shape[1] for x in lines)
    out = torch.zeros(len(lines), 1, lines[0].shape[0], w)
    for i, x in enumerate(lines):
        out[i, 0, :, : x.shape[1]] = torch.from_numpy(x)
    return out, torch.tensor([x.shape[1] for x in lines])


def test_nothing_to_do_leaves_the_batch_as_it_is() -> None:
    x, widths = _batch(_lines())
    y, w = augment_batch(x, widths, AugmentConfig(enabled=False), torch.Generator().manual_seed(0))
    assert y is x and w is widths
    # every operation switched off but the (identity) sampling grid: the pixels come back unchanged
    quiet = AugmentConfig(p=1.0, slant=0, rotate=0, scale=0, elastic=0, morph=False, blur=0, noise=0)
    y, w = augment_batch(x, widths, quiet, torch.Generator().manual_seed(0))
    assert torch.equal(w, widths) and torch.allclose(y, x, atol=1e-5)


def test_erosion_and_dilation_are_opencvs() -> None:
    lines = _lines()
    x, widths = _batch(lines)
    cfg = AugmentConfig(p=1.0, slant=0, rotate=0, scale=0, elastic=0, morph=True, blur=0, noise=0)
    y, _ = augment_batch(x, widths, cfg, torch.Generator().manual_seed(1))
    kernel = np.ones((2, 2), np.uint8)
    kinds = set()
    for i, line in enumerate(lines):
        got = y[i, 0, :, : line.shape[1]].numpy()
        if np.allclose(got, cv2.dilate(line, kernel), atol=1e-5):
            kinds.add("dilate")
        elif np.allclose(got, cv2.erode(line, kernel), atol=1e-5):
            kinds.add("erode")
        else:
            pytest.fail(f"line {i} is neither OpenCV's dilation nor its erosion")
    assert kinds == {"dilate", "erode"}


def test_same_generator_same_batch_and_widths_follow_the_lines() -> None:
    x, widths = _batch(_lines())
    cfg = AugmentConfig(p=1.0, ref_height=48)
    a, wa = augment_batch(x, widths, cfg, torch.Generator().manual_seed(7))
    b, wb = augment_batch(x, widths, cfg, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.equal(wa, wb)
    assert a.shape[3] == int(wa.max()) and float(a.min()) >= 0 and float(a.max()) <= 1
    for i, w in enumerate(wa.tolist()):
        assert not a[i, 0, :, w:].any()  # nothing, noise included, beyond a line's own width
    assert not torch.equal(wa, widths)  # stretches and slants change the widths


@pytest.mark.parametrize("p", [0.5, 1.0])
def test_distortions_match_the_cpu_augmentation_in_distribution(p: float) -> None:
    """Over many draws, the torch batch version and the per-line CPU version give lines of the same width and
    the same amount of ink (the statistics training sees), for the default strengths at 96 px."""
    lines = _lines(96)
    x, widths = _batch(lines)
    cfg = AugmentConfig(p=p, ref_height=48)
    rounds = 40
    cpu_w, cpu_ink, gpu_w, gpu_ink = [], [], [], []
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(rounds):
        for line in lines:
            y = augment(line, rng, cfg)
            cpu_w.append(y.shape[1] / line.shape[1])
            cpu_ink.append(float(y.sum()) / float(line.sum()))
        y, w = augment_batch(x, widths, cfg, gen)
        gpu_w += (w / widths).tolist()
        gpu_ink += (y.sum((1, 2, 3)) / x.sum((1, 2, 3))).tolist()
    for name, a, b, tol in (("width", cpu_w, gpu_w, 0.02), ("ink", cpu_ink, gpu_ink, 0.06)):
        ma, mb = float(np.mean(a)), float(np.mean(b))
        sa, sb = float(np.std(a)), float(np.std(b))
        assert abs(ma - mb) <= tol * ma, f"{name}: mean {ma:.3f} on the CPU, {mb:.3f} in torch"
        assert abs(sa - sb) <= 0.35 * sa + 0.01, f"{name}: spread {sa:.3f} on the CPU, {sb:.3f} in torch"


def test_what_the_torch_path_cannot_do_is_said() -> None:
    assert supports(AugmentConfig())
    assert not supports(AugmentConfig(), square=True)
    assert not supports(replace(AugmentConfig(), damage=DamageConfig(ops=["blur_motion"])))
