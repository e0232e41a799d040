"""The learned line detector: its targets, its network, rendered training pages, training with resume, loading
(and refusing what is not a detector), and the segmenter using a trained detector."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from htrlab.data.layout import PageLayout, TextLine
from htrlab.errors import CheckpointError, ConfigError
from htrlab.models.checkpoint import save_weights
from htrlab.segment import segment_lines
from htrlab.segment.export import write_page_xml
from htrlab.segment.learned import (
    CORE_RATIO,
    CoreNet,
    LineDetector,
    core_target,
    load_detector,
    save_detector,
)
from htrlab.segment.lines import SegmentConfig
from htrlab.synth.pages import synthetic_page
from htrlab.synth.render import FontInfo
from htrlab.train.segmenter import train_segmenter
from htrlab.train.state import load_state

# a font that ships with matplotlib (a dependency), so the test needs no fetched fonts
DEJAVU = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "letters from Kew about seeds and plants",
    "ever yours",
]


def test_core_target_is_a_band_above_each_baseline() -> None:
    base = np.array([[10.0, 50.0], [190.0, 50.0]])
    t = core_target((100, 200), [base], spacing=40.0)
    thick = round(CORE_RATIO * 40)
    col = t[:, 100]
    assert col[50 - thick + 1 : 50].all() and not col[52:].any() and not col[: 50 - thick - 1].any()
    assert not t[:, :8].any() and not t[:, 193:].any()  # only where the line is
    # scaled: the same page at half size
    half = core_target((50, 100), [base], spacing=40.0, scale=0.5)
    assert half[:, 50].sum() == pytest.approx(t[:, 100].sum() / 2, abs=1)


@pytest.mark.parametrize("shape", [(37, 53), (64, 128), (16, 16)])
def test_corenet_keeps_the_input_size(shape: tuple[int, int]) -> None:
    net = CoreNet(4).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, *shape)).shape == (2, 1, *shape)


def test_synthetic_page_baselines_lie_under_their_ink() -> None:
    rng = np.random.default_rng(0)
    font = FontInfo(DEJAVU, frozenset(), caps_only=False)
    gray, baselines, boxes, texts = synthetic_page(rng, [font], CORPUS)
    assert len(baselines) >= 3 and len(boxes) == len(texts) == len(baselines)
    assert all(t and set(t) <= set(" ".join(CORPUS)) for t in texts)
    for b in baselines:
        x0, y = int(b[0, 0]), int(b[0, 1])
        x1 = int(b[1, 0])
        above = gray[y - 8 : y, x0:x1]
        below = gray[y + 12 : y + 16, x0:x1]  # under the baseline: descenders only
        assert above.min() < 120  # ink right above the baseline
        assert (above < 120).mean() > 3 * (below < 120).mean()


def _page_xml(tmp_path: Path, name: str, seed: int) -> Path:
    """A rendered page saved with its baselines as PAGE-XML (training material)."""
    from PIL import Image

    gray, baselines, _, _ = synthetic_page(
        np.random.default_rng(seed), [FontInfo(DEJAVU, frozenset(), False)], CORPUS
    )
    Image.fromarray(gray).save(tmp_path / f"{name}.png")
    lines = []
    for k, b in enumerate(baselines):
        x0, y = b[0]
        x1 = b[1, 0]
        poly = np.array([[x0, y - 30], [x1, y - 30], [x1, y + 8], [x0, y + 8]])
        lines.append(
            TextLine(poly.astype(int), b.astype(int), (int(x0), int(y - 30), int(x1 - x0), 38), f"l{k}")
        )
    layout = PageLayout(gray.shape[1], gray.shape[0], lines)
    return write_page_xml(layout, f"{name}.png", tmp_path / f"{name}.xml")


def test_train_resume_load_and_segment_with_a_trained_detector(tmp_path: Path) -> None:
    train = [_page_xml(tmp_path, f"p{i}", i) for i in range(2)]
    val = [_page_xml(tmp_path, "v", 9)]
    out = tmp_path / "det" / "lines.safetensors"
    kw = dict(batch_size=2, crop=(64, 96), width=4, eval_every=2, log=lambda m: None)
    train_segmenter(train, out, val, steps=2, **kw)
    first = load_detector(out)
    assert isinstance(first, LineDetector) and first.net.width == 4
    state = load_state(out.with_name(out.name + ".state.safetensors"))
    assert state["step"] == 2
    # resume continues from step 2 to 4 instead of starting over
    logs: list[str] = []
    train_segmenter(train, out, val, steps=4, resume=True, **{**kw, "log": logs.append})
    assert any("resumed at step 2" in m for m in logs) and any("step 4/4" in m for m in logs)
    # a segmenter with this (barely trained) detector runs end to end and returns lines in page coordinates
    from htrlab.data.images import load_gray

    page = load_gray(tmp_path / "p0.png")
    layout = segment_lines(page, SegmentConfig(method="learned", detector=str(out)))
    for ln in layout.lines:
        assert ln.polygon[:, 0].max() < page.shape[1] and ln.polygon[:, 1].max() < page.shape[0]


def test_detector_files_that_are_not_detectors_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        load_detector(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_detector(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"kind": "something-else"})
    with pytest.raises(CheckpointError, match="not a line-detector written by htrlab"):
        load_detector(other)
    wide = tmp_path / "wide.safetensors"  # a tampered size is refused before anything is allocated
    save_weights(wide, {}, "line-detector", {"width": 10**6, "canon_char_h": 10.0, "threshold": 0.5})
    with pytest.raises(CheckpointError, match="wide.safetensors: not a usable line detector"):
        load_detector(wide)
    with pytest.raises(ConfigError, match="segmentation method"):
        segment_lines(np.full((100, 100), 200, np.uint8), SegmentConfig(method="magic"))
    path = save_detector(LineDetector(CoreNet(4)), tmp_path / "ok.safetensors")
    assert load_detector(path).net.width == 4


def test_bundled_detector_finds_the_lines_and_their_baselines_of_a_rendered_page() -> None:
    """A page in a font the detector never trained on (DejaVu Sans): every line found, and each found
    baseline (fitted to its core's lower edge) within a few pixels of the true one."""
    gray, baselines, boxes, _ = synthetic_page(
        np.random.default_rng(5), [FontInfo(DEJAVU, frozenset(), False)], CORPUS * 5
    )
    layout = segment_lines(gray)
    assert len(layout.lines) == len(baselines)
    from htrlab.segment.evaluate import match_lines

    assert match_lines([ln.polygon for ln in layout.lines], boxes).f1 == 1.0
    size = float(np.median([b[:, 1].max() - b[:, 1].min() for b in boxes]))  # the text's height
    for found, true in zip(layout.lines, baselines):
        mid = float(np.mean(true[:, 0]))
        y_found = float(np.interp(mid, found.baseline[:, 0], found.baseline[:, 1]))
        assert abs(y_found - true[0, 1]) < 0.1 * size  # 0.05 when written; the ink fit is off by 0.13
