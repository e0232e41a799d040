"""Config, charset, text normalisation, metrics, preprocessing, augmentation and batching."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import one_step_run, render_line
from htrlab.config import from_dict, load_config
from htrlab.data.augment import AugmentConfig, augment
from htrlab.data.batching import bucket_batches, collate, shard_batches
from htrlab.data.preprocess import PreprocessConfig, preprocess
from htrlab.errors import CharsetError, ConfigError, DataError
from htrlab.text import Charset, normalize_text
from htrlab.text.metrics import cer, count_errors, wer
from htrlab.train.config import RunConfig


@dataclass
class _Inner:
    lr: float = 1e-3
    steps: int = 10
    name: str = "x"


@dataclass
class _Outer:
    train: _Inner = field(default_factory=_Inner)
    flag: bool = False


def test_config_strict_unknown_key_suggests() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'. Did you mean 'lr'"):
        from_dict(_Outer, {"train": {"lrr": 1}})


def test_config_types() -> None:
    with pytest.raises(ConfigError, match="train.steps: expected an integer"):
        from_dict(_Outer, {"train": {"steps": "ten"}})
    with pytest.raises(ConfigError, match="flag: expected true/false"):
        from_dict(_Outer, {"flag": "yes"})
    assert from_dict(_Outer, {"train": {"lr": 1}}).train.lr == 1.0


def test_config_yaml_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 0.01\n  batch_size: 4\nmodel:\n  name: htr-jand\n")
    cfg = load_config(RunConfig, p, ["train.lr=3e-4", "preprocess.height=48", "model.params.dropout=0.1"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.batch_size == 4
    assert cfg.preprocess.height == 48
    assert cfg.model.params == {"dropout": 0.1}
    with pytest.raises(ConfigError, match="must look like"):
        load_config(RunConfig, None, ["train.lr"])
    with pytest.raises(ConfigError, match="Did you mean 'preprocess'"):
        load_config(RunConfig, None, ["preproces.height=3"])
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(RunConfig, p)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="preprocess.height"):
        load_config(RunConfig, None, ["preprocess.height=2"])
    with pytest.raises(ConfigError, match="schedule"):
        load_config(RunConfig, None, ["train.schedule=linear"])


def test_normalize_text_nfc_and_spaces() -> None:
    assert normalize_text("Cafe\u0301  au\tlait\n") == "Café au lait"
    assert normalize_text("\u00a0x\u2003y ") == "x y"


def test_charset_roundtrip_and_strictness() -> None:
    cs = Charset.from_texts(["abc", "cab d", "£é"])
    assert len(cs) == len(cs.symbols) + 1
    enc = cs.encode("a béd")
    assert 0 not in enc
    assert cs.decode(enc) == "a béd"
    with pytest.raises(CharsetError, match=r"\['x', 'z'\].*sample s7"):
        cs.encode("xaz", sample_id="s7")
    assert cs.decode(cs.encode("xaz", on_unknown="skip")) == "a"
    with pytest.raises(CharsetError, match="duplicate"):
        Charset(["a", "a"])


def test_metrics_known_values() -> None:
    assert cer(["abcd"], ["abcd"]) == 0.0
    assert cer(["abcd"], ["abxd"]) == pytest.approx(0.25)
    assert cer(["ab", "cd"], ["", "cd"]) == pytest.approx(0.5)  # corpus level: 2 errors / 4 chars
    assert wer(["the cat sat"], ["the hat sat"]) == pytest.approx(1 / 3)
    c = count_errors(["abc"], ["abcde"])
    assert c.char_errors == 2 and c.chars == 3
    with pytest.raises(ValueError):
        count_errors(["a"], [])


def test_preprocess_height_aspect_polarity() -> None:
    img = render_line("hello world", size=40)
    cfg = PreprocessConfig(height=32, pad=4)
    x = preprocess(img, cfg)
    assert x.shape[0] == 32 and x.dtype == np.float32
    expected_w = round(img.shape[1] * 32 / img.shape[0]) + 8
    assert abs(x.shape[1] - expected_w) <= 1
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x[:, :4].max() == 0.0  # padding is paper
    assert x.mean() < 0.3  # mostly paper (0), ink is high
    assert x.max() > 0.9


def test_preprocess_width_limits() -> None:
    cfg = PreprocessConfig(height=32, min_width=100, max_width=200, pad=0)
    assert preprocess(np.full((32, 10), 200, np.uint8), cfg).shape == (32, 100)
    assert preprocess(np.full((32, 5000), 200, np.uint8), cfg).shape == (32, 200)
    with pytest.raises(DataError, match="sample s1"):
        preprocess(np.zeros((0, 5), np.uint8), cfg, "s1")


def test_options_removed_from_htrlab_load_from_old_files_only_when_off() -> None:
    """Files written before an experiment was removed hold its key at the value that meant "off": they load;
    a file that switches one on is refused in one line naming it."""
    from htrlab.config import from_dict
    from htrlab.models.ppocr import PPOCRConfig
    from htrlab.train.config import TrainSection

    assert from_dict(PreprocessConfig, {"height": 32, "width_scale": 1.0}).height == 32
    assert from_dict(PPOCRConfig, {"low_rank": 0.0, "low_rank_min_channels": 240, "half_width_late": False})
    assert from_dict(TrainSection, {"ctc_entropy": 0.0}).lr > 0
    for cls, key, value in [
        (PreprocessConfig, "width_scale", 0.9),
        (PPOCRConfig, "low_rank", 0.25),
        (PPOCRConfig, "half_width_late", True),
        (TrainSection, "ctc_entropy", 0.1),
    ]:
        with pytest.raises(ConfigError, match=f"'x.{key}' was an experiment that was not adopted") as err:
            from_dict(cls, {key: value}, where="x")
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(PreprocessConfig, {"width_scales": 1.0})


def test_preprocess_flattens_uneven_background() -> None:
    img = render_line("stain test", size=40).astype(np.float32)
    gradient = np.linspace(0, 120, img.shape[1])[None, :]
    dark = np.clip(img - gradient, 0, 255).astype(np.uint8)
    x = preprocess(dark, PreprocessConfig(height=32, pad=0))
    right_paper = x[:2, -20:]  # top rows at the darkened right end are paper
    assert right_paper.mean() < 0.2


def test_augment_deterministic_and_bounded() -> None:
    x = preprocess(render_line("augment me"), PreprocessConfig(height=32))
    cfg = AugmentConfig(p=1.0)
    a = augment(x, np.random.default_rng(3), cfg)
    b = augment(x, np.random.default_rng(3), cfg)
    assert np.array_equal(a, b)
    assert a.shape[0] == 32 and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not np.array_equal(a, augment(x, np.random.default_rng(4), cfg))
    assert augment(x, np.random.default_rng(3), AugmentConfig(enabled=False)) is x


def test_augment_amounts_scale_with_line_height() -> None:
    """With ref_height 48 a 96-px line gets the 48-px distortions at twice the size (a finer input must not
    mean weaker augmentation)."""
    x = preprocess(render_line("scale me"), PreprocessConfig(height=96))
    only = {"p": 1.0, "slant": 0.0, "rotate": 0.0, "scale": 0.0, "morph": False, "blur": 0.0, "noise": 0.0}
    scaled = augment(x, np.random.default_rng(5), AugmentConfig(elastic=2.0, ref_height=48, **only))
    assert np.array_equal(scaled, augment(x, np.random.default_rng(5), AugmentConfig(elastic=4.0, **only)))
    assert not np.array_equal(
        scaled, augment(x, np.random.default_rng(5), AugmentConfig(elastic=2.0, **only))
    )
    morph = {**only, "elastic": 0.0, "morph": True}
    for ref, k in ((0, 2), (48, 3), (32, 4)):
        y = augment(x, np.random.default_rng(1), AugmentConfig(ref_height=ref, **morph))
        kernel = np.ones((k, k), np.uint8)
        assert np.array_equal(y, cv2.dilate(x, kernel)) or np.array_equal(y, cv2.erode(x, kernel)), ref
    with pytest.raises(ConfigError, match="ref_height"):
        AugmentConfig(ref_height=-1)


def test_augment_keeps_square_inputs_square() -> None:
    x = preprocess(render_line("square"), PreprocessConfig(height=64, resize="square"))
    cfg = AugmentConfig(p=1.0, scale=0.3, slant=0.5)
    shapes = {augment(x, np.random.default_rng(s), cfg).shape for s in range(8)}
    assert len(shapes) > 1  # a free line changes width...
    for s in range(8):
        y = augment(x, np.random.default_rng(s), cfg, keep_size=True)
        assert y.shape == (64, 64) and y.dtype == np.float32  # ...a square one is squeezed back
        assert y.min() >= 0.0 and y.max() <= 1.0 and not np.array_equal(y, x)


def test_bucket_batches_cover_all_and_group_widths() -> None:
    widths = np.random.default_rng(0).integers(50, 1000, 103)
    batches = bucket_batches(widths, 8)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert all(len(b) <= 8 for b in batches)
    spread = [np.ptp(widths[b]) for b in batches]
    assert np.median(spread) < 100  # neighbours in width share a batch
    shuffled = bucket_batches(widths, 8, np.random.default_rng(1))
    assert sorted(i for b in shuffled for i in b) == list(range(103))
    capped = bucket_batches(widths, 64, max_pixels=64 * 2000, height=64)
    assert all(len(b) * widths[b].max() <= 2000 or len(b) == 1 for b in capped)
    close = bucket_batches(widths, 64, max_spread=0.1)
    assert sorted(i for b in close for i in b) == list(range(103))
    assert all(widths[b].max() <= 1.1 * widths[b].min() for b in close)
    shards = [shard_batches(batches, r, 2) for r in range(2)]
    assert len(shards[0]) == len(shards[1])
    assert not set(map(tuple, shards[0])) & set(map(tuple, shards[1]))


def test_collate_pads_and_encodes() -> None:
    cs = Charset.from_texts(["ab"])
    b = collate([np.ones((8, 10), np.float32), np.ones((8, 21), np.float32)], ["ab", "b"], ["x", "y"], cs)
    assert tuple(b.images.shape) == (2, 1, 8, 24)
    assert b.widths.tolist() == [10, 21]
    assert b.targets.tolist() == [1, 2, 2] and b.target_lengths.tolist() == [2, 1]
    assert float(b.images[0, 0, :, 10:].abs().sum()) == 0.0


def test_greedy_decode_merges_repeats_drops_blanks_and_normalises_spaces() -> None:
    import torch

    from htrlab.decoding import greedy_decode

    cs = Charset(list(" ab"))  # 1 = space, 2 = a, 3 = b
    path = [1, 2, 2, 0, 2, 3, 1, 1, 0, 1, 3]  # " a" "a" "b" "  " ... -> " aab  b"
    lp = torch.full((1, len(path), 4), -10.0)
    for t, c in enumerate(path):
        lp[0, t, c] = 0.0
    (d,) = greedy_decode(lp, torch.tensor([len(path)]), cs)
    assert d.text == "aab b"
    assert 0.99 < d.confidence <= 1.0
    (short,) = greedy_decode(lp, torch.tensor([3]), cs)  # only the valid frames count
    assert short.text == "a"


def test_engines_that_read_small_runs_get_batches_cut_into_them() -> None:
    """An engine's ``lines_per_run`` caps the lines of one call (ONNX on CPUs: 2); batch size still groups lines
    by width, and every line comes back in input order."""
    import torch

    from htrlab.read.predict import emissions

    calls: list[int] = []

    from htrlab.read.engines import Engine

    def forward(images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(images.shape[0])
        frames = images.shape[3] // 8
        # each line's frames carry its own width, so a mix-up of lines would show
        lp = widths[:, None, None].float().expand(-1, frames, 3).clone()
        return lp, widths // 8

    def engine(per_run: int) -> Engine:
        return Engine("fake", Path("fake"), None, None, None, 0, forward, lines_per_run=per_run)  # type: ignore[arg-type]

    widths = [80, 400, 86, 88, 408, 84, 416]
    lines = [np.zeros((32, w), np.uint8) for w in widths]
    out = emissions(engine(2), lines, batch_size=32)
    assert max(calls) == 2 and sum(calls) == len(lines) and len(calls) == 4  # 4 short lines, 3 long: 2+2, 2+1
    assert [int(e[0, 0]) for e in out] == widths
    assert [e.shape[0] for e in out] == [w // 8 for w in widths]
    calls.clear()
    emissions(engine(0), lines, batch_size=32)  # a whole batch per call
    assert sorted(calls) == [3, 4]


def test_control_bidi_and_emoji_characters_are_named(line_folder, tmp_path, capsys) -> None:
    from htrlab.data import open_dataset
    from htrlab.data.check import check_dataset
    from htrlab.text.normalize import odd_character_report, odd_characters
    from htrlab.train.loop import train

    assert odd_characters("pay \u202eyap 😀 \x07ok") == ["\u202e", "😀", "\x07"]
    assert odd_characters("£5 é ∞ – “quoted”") == []
    assert odd_character_report([("a", "plain")]) is None
    (next(line_folder.rglob("train/*/*.txt"))).write_text("evil \u202eetxt 😀\n", encoding="utf-8")
    report = check_dataset(open_dataset(line_folder), progress=False)
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in report.format_text() and "WARNING" in report.format_text()
    cfg = one_step_run(line_folder, tmp_path / "run")
    train(cfg)
    assert "U+1F600" in capsys.readouterr().err
