"""Damage operations: deterministic, dtype/range/shape preserved, severities ordered and measurable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import render_line, save_png
from htrlab.cli.main import main
from htrlab.data.augment import AugmentConfig, augment
from htrlab.data.preprocess import PreprocessConfig, preprocess
from htrlab.degrade import OPS, SEVERITY_TABLE, apply_op, list_ops
from htrlab.degrade.ops import ink_mask
from htrlab.errors import ConfigError

IMG = render_line("the quick brown fox jumps over", size=40)


@pytest.mark.parametrize("op", list_ops())
def test_op_contract(op: str) -> None:
    a = apply_op(IMG, op, 3, np.random.default_rng(5))
    b = apply_op(IMG, op, 3, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == IMG.shape
    f = apply_op(IMG.astype(np.float32) / 255, op, 3, np.random.default_rng(5))
    assert f.dtype == np.float32 and f.min() >= 0.0 and f.max() <= 1.0
    rgb = apply_op(np.repeat(IMG[..., None], 3, axis=2), op, 3, np.random.default_rng(5))
    assert rgb.shape == (*IMG.shape, 3)


@pytest.mark.parametrize("op", list(OPS))
def test_more_severity_more_damage(op: str) -> None:
    diffs = [
        np.abs(apply_op(IMG, op, s, np.random.default_rng(1)).astype(float) - IMG).mean() for s in (1, 5)
    ]
    assert diffs[1] > diffs[0] > 0


def test_occlusion_and_missing_strokes_remove_the_stated_share_of_ink() -> None:
    ink = ink_mask(IMG.astype(np.float32) / 255)
    for op in ("occlusion", "missing_strokes"):
        for s in (1, 3, 5):
            out = apply_op(IMG, op, s, np.random.default_rng(0))
            removed = (ink & ~ink_mask(out.astype(np.float32) / 255)).sum() / ink.sum()
            target = SEVERITY_TABLE[op][1][s - 1]
            assert removed >= 0.8 * target, (op, s, removed)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown damage operation"):
        apply_op(IMG, "smudge", 3, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="severity"):
        apply_op(IMG, "jpeg", 6, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="augment.damage.ops"):
        AugmentConfig(
            damage=__import__("htrlab.data.augment", fromlist=["DamageConfig"]).DamageConfig(ops=["x"])
        )


def test_damage_as_augmentation() -> None:
    from htrlab.data.augment import DamageConfig

    x = preprocess(IMG, PreprocessConfig(height=32))
    cfg = AugmentConfig(p=0.0, damage=DamageConfig(ops=["occlusion"], p=1.0, max_severity=5))
    y = augment(x, np.random.default_rng(0), cfg)
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.sum() < x.sum()  # ink was removed


def test_degrade_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["degrade", "--list-ops"]) == 0
    listed = capsys.readouterr().out
    assert all(op in listed for op in list_ops())
    src = save_png(IMG, tmp_path / "in" / "line.png")
    (tmp_path / "in" / "line.txt").write_text("the quick brown fox jumps over")
    bad = tmp_path / "in" / "bad.png"
    bad.write_bytes(b"nope")
    assert (
        main(["degrade", str(src), str(bad), "-o", str(tmp_path / "out"), "--op", "stain", "--severity", "4"])
        == 1
    )
    out = np.asarray(Image.open(tmp_path / "out" / "line.png"))
    assert out.shape == IMG.shape and not np.array_equal(out, IMG)
    assert (tmp_path / "out" / "line.txt").read_text().startswith("the quick")
    assert main(["degrade", str(src), "-o", str(tmp_path / "p.png"), "--preview"]) == 0
    assert Image.open(tmp_path / "p.png").height >= IMG.shape[0] * (1 + 3 * len(list_ops()))
    assert main(["degrade", str(src), "-o", str(tmp_path / "x"), "--op", "nope"]) == 2
    json.dumps(SEVERITY_TABLE)


def test_robustness_benchmark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import LINES
    from htrlab.evaluate.robustness import run_robustness
    from htrlab.models.checkpoint import load_checkpoint
    from htrlab.train.loop import load_run_config, train

    data = tmp_path / "d"
    for i, text in enumerate(LINES):
        split = "train" if i < 4 else ("val" if i < 6 else "test")
        save_png(render_line(text, seed=i), data / split / f"doc{i}" / f"l{i}.png")
        (data / split / f"doc{i}" / f"l{i}.txt").write_text(text)
    cfg = load_run_config(
        None,
        [
            f"data.dataset={data}",
            f"train.out_dir={tmp_path / 'run'}",
            "model.tiny=true",
            "preprocess.height=32",
            "train.max_steps=2",
            "train.eval_every=2",
            "train.progress=false",
        ],
    )
    train(cfg)
    ckpt = tmp_path / "run" / "best.safetensors"
    out = tmp_path / "rob"
    assert (
        main(
            [
                "robustness",
                str(ckpt),
                str(data),
                "--split",
                "test",
                "--ops",
                "occlusion,jpeg",
                "--severities",
                "1,5",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| occlusion | greedy |" in table and "| jpeg | greedy |" in table
    assert (out / "robustness.png").is_file()
    rows = (out / "robustness.csv").read_text().splitlines()
    assert len(rows) == 1 + 1 + 2 * 2  # header, clean, 2 ops x 2 severities
    assert main(["robustness", str(ckpt), str(data), "--decoders", "beam+lm", "-o", str(out)]) == 2  # no --lm
    assert main(["robustness", str(ckpt), str(data), "--decoders", "greedy,viterbi", "-o", str(out)]) == 2
    cell = ["--ops", "fading", "--severities", "3", "--decoders", "greedy,beam"]
    assert main(["robustness", str(ckpt), str(data), *cell, "-o", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| fading | beam |" in table
    # damaged once, identically, whatever the decoder list
    loaded = load_checkpoint(ckpt)
    grays = [render_line(t) for t in LINES[:2]]
    a = run_robustness(loaded, grays, LINES[:2], ["stain"], [3])
    b = run_robustness(loaded, grays, LINES[:2], ["stain"], [3])
    assert [r.cer for r in a] == [r.cer for r in b]
