"""The shipped training configurations parse, name real models with valid parameters, and pair correctly."""

from __future__ import annotations

from pathlib import Path

import pytest

from htrlab.models.registry import build_model, make_config
from htrlab.train.loop import load_run_config, resolve_model_params

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path: Path) -> None:
    cfg = load_run_config(path, [])
    make_config(cfg.model.name, resolve_model_params(cfg), False)  # raises on unknown or invalid parameters


def test_student_config_matches_the_fast_teacher_frame_by_frame() -> None:
    """Distillation needs the student to see the teacher's images and give one frame per teacher frame."""
    folder = CONFIGS[0].parent
    teacher_cfg = load_run_config(folder / "hooker-htr-jand-fast.yaml", [])
    student_cfg = load_run_config(folder / "hooker-htr-jand-student.yaml", [])
    assert student_cfg.preprocess == teacher_cfg.preprocess
    teacher = build_model(teacher_cfg.model.name, 10, resolve_model_params(teacher_cfg))
    student = build_model(student_cfg.model.name, 10, resolve_model_params(student_cfg))
    for width in (40, 333, 1201):
        assert int(student.output_length(width)) == int(teacher.output_length(width))  # type: ignore[operator]
    n_t = sum(p.numel() for p in teacher.parameters())
    n_s = sum(p.numel() for p in student.parameters())
    assert 0.35 < n_s / n_t < 0.6


def test_transformer_pair_is_trained_the_same_way() -> None:
    folder = CONFIGS[0].parent
    vit = load_run_config(folder / "hooker-vit-ctc.yaml", [])
    trocr = load_run_config(folder / "hooker-trocr-small.yaml", [])
    assert vit.data == trocr.data and vit.augment == trocr.augment
    same = {k: v for k, v in vars(vit.train).items() if k != "out_dir"}
    assert same == {k: v for k, v in vars(trocr.train).items() if k != "out_dir"}
    assert make_config(vit.model.name, vit.model.params, False).encoder_layers == 12  # type: ignore[attr-defined]
