"""Shared fixtures: rendered text lines and small dataset layouts built in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IAM_SAMPLE = SHARED / "data" / "iam-sample"
HOOKER = SHARED / "data" / "hooker-letters"


def render_line(text: str, size: int = 28, seed: int = 0, pad: int = 10) -> np.ndarray:
    """A grayscale uint8 image of ``text`` (dark ink on light paper) with Pillow's built-in font."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 235)
    ImageDraw.Draw(im).text((pad - left, pad - top), text, fill=30, font=font)
    rng = np.random.default_rng(seed)
    arr = np.asarray(im, dtype=np.float32) + rng.normal(0, 4, (im.height, im.width))
    return np.clip(arr, 0, 255).astype(np.uint8)


def save_png(arr: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


LINES = [
    "the cat sat",
    "on a mat",
    "dear sir",
    "kind regards",
    "seeds of kew",
    "many thanks",
    "a letter",
    "the garden",
]


@pytest.fixture
def line_folder(tmp_path: Path) -> Path:
    """A folder dataset: train/, val/, test/ with rendered lines and their .txt files."""
    root = tmp_path / "lines"
    for i, text in enumerate(LINES):
        split = "train" if i < 4 else ("val" if i < 6 else "test")
        stem = root / split / f"doc{i}" / f"line{i}"
        save_png(render_line(text, seed=i), stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    return root


def make_page(
    tmp_path: Path,
    texts: list[str],
    name: str = "page1",
    schema: str = "2013-07-15",
    reverse_order: bool = True,
) -> Path:
    """A PAGE-XML page with one region and a line per text, its image beside it.

    Lines are written in the XML in reverse reading order (with readingOrder indices) to test ordering.
    """
    rows = [render_line(t, seed=i) for i, t in enumerate(texts)]
    width = max(r.shape[1] for r in rows) + 40
    gap = 20
    height = sum(r.shape[0] + gap for r in rows) + 40
    page = np.full((height, width), 235, np.uint8)
    y = 20
    boxes = []
    for r in rows:
        page[y : y + r.shape[0], 20 : 20 + r.shape[1]] = r
        boxes.append((20, y, 20 + r.shape[1], y + r.shape[0]))
        y += r.shape[0] + gap
    save_png(page, tmp_path / f"{name}.png")
    lines_xml = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        lines_xml.append(
            f'<TextLine id="l{i}" custom="readingOrder {{index:{i};}}">'
            f'<Coords points="{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"/>'
            f'<Baseline points="{x0},{y1 - 5} {x1},{y1 - 5}"/>'
            f"<TextEquiv><Unicode>{texts[i]}</Unicode></TextEquiv></TextLine>"
        )
    if reverse_order:
        lines_xml.reverse()
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/'
        f'pagecontent/{schema}"><Metadata><Creator>test</Creator></Metadata>'
        f'<Page imageFilename="{name}.png" imageWidth="{width}" imageHeight="{height}">'
        f'<ReadingOrder><OrderedGroup id="ro"><RegionRefIndexed index="0" regionRef="r1"/></OrderedGroup>'
        f'</ReadingOrder><TextRegion id="r1"><Coords points="0,0 {width},0 {width},{height} 0,{height}"/>'
        + "".join(lines_xml)
        + "</TextRegion></Page></PcGts>"
    )
    path = tmp_path / f"{name}.xml"
    path.write_text(xml, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTRLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def set_args(overrides: dict[str, object]) -> list[str]:
    """``--set KEY=VALUE`` command-line arguments for every override."""
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model trained for a few steps on a rendered-line folder (shared by the CLI tests)."""
    from htrlab.cli.main import main

    root = tmp_path_factory.mktemp("cli")
    data = root / "lines"
    for i, text in enumerate(LINES):
        split = "train" if i < 4 else ("val" if i < 6 else "test")
        save_png(render_line(text, seed=i), data / split / f"doc{i}" / f"l{i}.png")
        (data / split / f"doc{i}" / f"l{i}.txt").write_text(text)
    out = root / "run"
    overrides = {
        "data.dataset": data,
        "train.out_dir": out,
        "model.tiny": "true",
        "preprocess.height": 32,
        "train.max_steps": 4,
        "train.eval_every": 4,
        "train.progress": "false",
        "data.cache_dir": root / "cache",
    }
    rc = main(["train", *set_args(overrides)])
    assert rc == 0
    return out / "best.safetensors", data


def one_step_run(dataset: Path, out: Path, *extra: str) -> object:
    """The run configuration of a tiny model trained one step on the CPU (for tests of what training reports)."""
    from htrlab.train.loop import load_run_config

    return load_run_config(
        None,
        [
            f"data.dataset={dataset}",
            f"train.out_dir={out}",
            "model.tiny=true",
            "preprocess.height=32",
            "train.max_steps=1",
            "train.eval_every=1",
            "train.batch_size=2",
            "train.progress=false",
            "train.device=cpu",
            *extra,
        ],
    )
