"""Synthetic line rendering: deterministic, readable by the dataset readers, fonts checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from htrlab.cli.main import main
from htrlab.data import open_dataset
from htrlab.errors import DataError
from htrlab.synth import SynthConfig, find_fonts, generate, load_corpus, render_text

MPL_FONTS = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
DEJAVU = [MPL_FONTS / "DejaVuSans.ttf", MPL_FONTS / "DejaVuSerif-Italic.ttf"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    p = tmp_path / "text.txt"
    p.write_text(
        "The quick brown fox jumps over the lazy dog.\nMy dear Dyer, I return the letter.\n"
        "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell\n",
        encoding="utf-8",
    )
    return p


def test_fonts_found_and_classified() -> None:
    fonts = find_fonts(DEJAVU)
    assert [f.name for f in fonts] == ["DejaVuSans", "DejaVuSerif-Italic"]
    assert not any(f.caps_only for f in fonts)
    assert "é" in fonts[0].chars


def test_no_fonts_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.ttf").write_bytes(b"not a font")
    with pytest.raises(DataError, match="no usable fonts"):
        find_fonts([tmp_path])


def test_corpus_reads_plain_and_iam_lines(corpus: Path) -> None:
    lines = load_corpus([corpus])
    assert lines[2] == "A MOVE to stop Mr. Gaitskell"
    assert len(lines) == 3


def test_render_is_deterministic_and_dark_on_light() -> None:
    font = find_fonts(DEJAVU)[0]
    a = render_text("hello world", font, np.random.default_rng([3, 1]), SynthConfig())
    b = render_text("hello world", font, np.random.default_rng([3, 1]), SynthConfig())
    assert np.array_equal(a, b)
    assert a.dtype == np.uint8 and a.ndim == 2 and a.shape[1] > a.shape[0]
    assert np.median(a) > 150 and a.min() < 120
    with pytest.raises(DataError, match="no glyph"):
        render_text("\u4e2d", font, np.random.default_rng(0), SynthConfig())


def test_generate_writes_a_folder_dataset_split_by_font(tmp_path: Path, corpus: Path) -> None:
    fonts = find_fonts(DEJAVU)
    stats = generate(30, tmp_path / "out", fonts, load_corpus([corpus]), seed=7, progress=False)
    assert stats["written"] == 30 and stats["lines_per_s"] > 0
    ds = open_dataset(tmp_path / "out")
    assert len(ds.samples) == 30
    assert {s.doc_id for s in ds.samples} <= {"DejaVuSans", "DejaVuSerif-Italic"}
    again = tmp_path / "again"
    generate(30, again, fonts, load_corpus([corpus]), seed=7, progress=False)
    first = sorted((tmp_path / "out").rglob("*.txt"))
    assert [p.read_text() for p in first] == [
        (again / p.relative_to(tmp_path / "out")).read_text() for p in first
    ]


def test_synth_cli(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert (
        main(["synth", "-n", "5", "-o", str(out), "--fonts", *map(str, DEJAVU), "--text", str(corpus)]) == 0
    )
    assert json.loads(capsys.readouterr().out)["written"] == 5
    assert len(list(out.rglob("*.png"))) == 5
    assert main(["synth", "-n", "0", "-o", str(out), "--fonts", str(DEJAVU[0]), "--text", str(corpus)]) == 2


def test_printed_style_is_upright_and_straight(corpus: Path) -> None:
    from htrlab.synth.render import printed_config

    font = find_fonts(DEJAVU[:1])[0]
    cfg = printed_config()
    assert cfg.slant == 0.0 and cfg.wobble < SynthConfig().wobble
    img = render_text("Hello world", font, np.random.default_rng(0), cfg)
    # upright, straight text: ink rows stay within a band about the size of the font
    ink_rows = np.nonzero((img < 128).sum(axis=1))[0]
    assert ink_rows.max() - ink_rows.min() < cfg.font_size[1] * 1.5


def test_synth_cli_printed_style(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    args = ["synth", "-n", "4", "-o", str(out), "--fonts", str(DEJAVU[0]), "--text", str(corpus)]
    assert main([*args, "--style", "printed"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 4
    plain = sorted(out.rglob("*.png"))[0].read_bytes()
    assert main([*args, "--style", "printed", "--crop-styles"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 4
    assert sorted(out.rglob("*.png"))[0].read_bytes() != plain  # the same sample, cut another way
    assert main([*args, "--style", "gothic"]) == 2  # an unknown style is a usage error


def test_fonts_with_a_negative_descent_are_not_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFont

    font = find_fonts(DEJAVU[:1])[0]
    cfg = SynthConfig(wobble=0.0, slant=0.0, elastic=0.0, noise=0.0, blur=0.0, stroke=(0, 0))
    real = ImageFont.FreeTypeFont.getmetrics

    def negative_descent(self: ImageFont.FreeTypeFont) -> tuple[int, int]:
        ascent, descent = real(self)
        return ascent, -descent  # as some handwriting fonts (e.g. Joscelyn) report it

    monkeypatch.setattr(ImageFont.FreeTypeFont, "getmetrics", negative_descent)
    img = render_text("Quigley jumped", font, np.random.default_rng(1), cfg)
    ink = img < 128
    assert ink.any()
    assert not ink[0].any() and not ink[-1].any()  # the descenders and capitals are inside the image


def test_woff_fonts_are_found_and_render(tmp_path: Path) -> None:
    # the npm @fontsource handwriting families ship .woff files (scripts/fetch_fonts.sh npm)
    from fontTools.ttLib import TTFont

    tt = TTFont(str(DEJAVU[0]))
    tt.flavor = "woff"
    woff = tmp_path / "npm-demo" / "demo-latin-400-normal.woff"
    woff.parent.mkdir()
    tt.save(str(woff))
    (font,) = find_fonts([tmp_path])
    assert font.path == woff and not font.caps_only and "a" in font.chars
    img = render_text("Kew 1851", font, np.random.default_rng(0), SynthConfig())
    assert img.ndim == 2 and img.shape[1] > img.shape[0] and (img < 128).any()


def _make_synth_sets() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_synth_sets", Path(__file__).parents[1] / "benchmarks" / "make_synth_sets.py"
    )
    assert spec is not None and spec.loader is not None
    mss = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mss)
    return mss


def test_synth_sets_hold_out_whole_families(tmp_path: Path) -> None:
    mss = _make_synth_sets()
    for family in ("fonts-kristi", "npm-indie-flower", "npm-caveat", "fonts-breip"):
        (tmp_path / family).mkdir()
        (tmp_path / family / f"{family}.ttf").write_bytes(DEJAVU[0].read_bytes())
    train, test = mss._split_fonts(tmp_path, mss.HELD_OUT_HAND, mss.HELD_OUT_HAND_NPM)
    assert sorted(f.path.parent.name for f in train) == ["fonts-breip", "npm-caveat"]
    assert [f.path.parent.name for f in test] == ["fonts-kristi"]
    train2, test2 = mss._split_fonts(tmp_path, mss.HELD_OUT_HAND_NPM, mss.HELD_OUT_HAND)
    assert [f.path.parent.name for f in test2] == ["npm-indie-flower"] and train2 == train


def test_training_text_is_written_in_the_models_characters() -> None:
    fit = _make_synth_sets().fit_charset
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'\"-. ")
    assert (
        fit("\u201cZo\u00eb\u2019s na\u00efve caf\u00e9\u201d \u2014 #1", allowed) == '"Zoe\'s naive cafe" --'
    )
    # a letter the model has in one case only loses its accent too (capitals-only fonts upper-case text)
    assert fit("caf\u00e9", allowed | {"\u00e9"}) == "cafe"
    assert fit("caf\u00e9", allowed | {"\u00e9", "\u00c9"}) == "caf\u00e9"


def _bar_mask(h: int, w: int, rows: tuple[int, int]) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    m[rows[0] : rows[1], 10 : w - 10] = 1.0
    return m


def test_synthetic_lines_are_cut_in_every_page_crop_style() -> None:
    from htrlab.synth.render import _page_cut

    size = 20
    line = _bar_mask(60, 200, (20, 40))  # the line's ink: rows 20..39, baseline at row 40
    near = [(_bar_mask(60, 200, (0, 60)), 40.0)] * 2  # neighbours with strokes reaching far up and down
    own = float(line.sum())
    more = less = plain = 0
    for seed in range(60):
        cut = _page_cut(line, 40.0, near, size, np.random.default_rng(seed))
        assert cut.ndim == 2 and cut.dtype == np.float32 and cut.shape[0] >= 20
        ink = float(cut.sum())
        assert ink >= 0.5 * own  # never more than half of the line's own ink is cut away
        more += ink > own * 1.05  # neighbours reach in (box, band)
        less += ink < own * 0.95  # outline clipping, or a band through tall strokes
        plain += abs(ink - own) <= 0.05 * own  # ink box or clean outline
    assert more and less and plain


def test_crop_styled_rendering_is_deterministic_and_readable(tmp_path: Path, corpus: Path) -> None:
    fonts = find_fonts(DEJAVU)
    cfg = SynthConfig(crop_styles=True)
    a = render_text("hello world", fonts[0], np.random.default_rng(4), cfg, ["Above the line", "below it"])
    b = render_text("hello world", fonts[0], np.random.default_rng(4), cfg, ["Above the line", "below it"])
    assert np.array_equal(a, b) and a.dtype == np.uint8 and np.median(a) > 150 and a.min() < 120
    stats = generate(6, tmp_path / "s", fonts, load_corpus([corpus]), 1, cfg, progress=False)
    assert stats["written"] == 6
    assert len(open_dataset(str(tmp_path / "s")).samples) == 6
