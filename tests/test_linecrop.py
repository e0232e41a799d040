"""Lines cut from their pages along their baselines (htrlab.data.linecrop) and the choice of crop."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import save_png
from htrlab.data.dataset import open_dataset
from htrlab.data.linecrop import (
    LINE_CROPS,
    baseline_y,
    crop_baseline_band,
    crop_style,
    cut_line,
    line_spacing,
)
from htrlab.data.prepared import prepare_lines
from htrlab.data.preprocess import PreprocessConfig
from htrlab.data.readers import Problems, read_alto_file
from htrlab.errors import ConfigError, DataError
from htrlab.segment.read import lines_of


def test_baseline_y_interpolates_and_extends_the_end_segments() -> None:
    b = np.array([[100, 50], [0, 40], [200, 50]])  # unsorted on purpose
    assert baseline_y(b, 50.0) == pytest.approx(45.0)
    assert baseline_y(b, 150.0) == pytest.approx(50.0)
    assert baseline_y(b, -100.0) == pytest.approx(30.0)  # slope of the first segment (0.1) carried left
    assert baseline_y(b, 300.0) == pytest.approx(50.0)
    assert np.allclose(baseline_y(np.array([[5, 10], [5, 30]]), [0.0, 9.0]), 20.0)  # vertical: its mean
    assert np.allclose(baseline_y(np.array([[0, 10], [0, 20], [10, 20]]), [0.0, 10.0]), [15.0, 20.0])


def test_line_spacing_is_the_median_gap_to_the_line_above() -> None:
    lines = [np.array([[0, 100 + 80 * i], [500, 110 + 80 * i]]) for i in range(5)]
    assert line_spacing(lines) == pytest.approx(80.0)
    # a short line beside the others has no line above it at its middle and does not count
    assert line_spacing([*lines, np.array([[900, 20], [950, 20]])]) == pytest.approx(80.0)
    assert line_spacing(lines[:1]) is None
    assert line_spacing([None, lines[0]]) is None


def _sloping_page() -> tuple[np.ndarray, np.ndarray]:
    """A page with one line of 'letters' (bars 30 px tall standing on a baseline that falls 40 px over 400)."""
    page = np.full((300, 600), 230, np.uint8)
    base = np.array([[100.0, 120.0], [500.0, 160.0]])
    for x in range(110, 490, 12):
        y = round(float(baseline_y(base, x + 3)))
        page[y - 30 : y, x : x + 6] = 20
    return page, base


def test_band_follows_the_baseline_and_straightens_the_line() -> None:
    page, base = _sloping_page()
    band = crop_baseline_band(page, base, spacing=50.0)
    # 0.8 * 50 rows above the baseline, 0.4 * 50 below; a column per pixel along it plus 0.1 * 50 each side
    assert band.shape == (40 + 20 + 1, round(np.hypot(400, 40)) + 2 * 5 + 1)
    ink_rows = np.nonzero((band < 100).any(1))[0]
    # every bar lands in the same rows: 30 rows just above the baseline row (index 40)
    assert ink_rows.min() >= 40 - 31 and ink_rows.max() <= 40
    # each bar (a connected blob) stands on the same row, whereas on the page their feet are 40 rows apart
    n, _, stats, _ = cv2.connectedComponentsWithStats((band < 100).astype(np.uint8))
    tops, bottoms = stats[1:, cv2.CC_STAT_TOP], stats[1:, cv2.CC_STAT_TOP] + stats[1:, cv2.CC_STAT_HEIGHT]
    assert n - 1 == 32
    assert tops.max() - tops.min() <= 1 and bottoms.max() - bottoms.min() <= 1
    assert band[0, 0] == 230  # paper outside the ink, including beyond the page's edge


def test_band_of_a_line_written_down_the_margin_reads_left_to_right() -> None:
    page, base = _sloping_page()
    level = crop_baseline_band(page, base, spacing=50.0)
    # the same page turned a quarter clockwise: the line now runs downwards, the tops of its letters point right
    turned = np.ascontiguousarray(np.rot90(page, k=-1))
    h = page.shape[0]
    turned_base = np.stack([h - 1 - base[:, 1], base[:, 0]], 1)
    band = crop_baseline_band(turned, turned_base, spacing=50.0)
    assert band.shape == level.shape
    assert np.abs(band.astype(int) - level.astype(int)).mean() < 3


def test_band_of_a_level_baseline_drawn_right_to_left_is_not_turned_over() -> None:
    page, base = _sloping_page()
    assert np.array_equal(crop_baseline_band(page, base[::-1], 50.0), crop_baseline_band(page, base, 50.0))


def test_band_errors_name_the_line() -> None:
    page, base = _sloping_page()
    with pytest.raises(DataError, match="p.xml line l1: line spacing"):
        crop_baseline_band(page, base, spacing=0.0, source="p.xml line l1")
    with pytest.raises(DataError, match="line spacing"):
        crop_baseline_band(page, base, spacing=5000.0, source="p.xml line l1")
    with pytest.raises(DataError, match="outside"):
        crop_baseline_band(page, base + np.array([2000.0, 0.0]), spacing=50.0, source="p.xml line l1")
    with pytest.raises(DataError, match="no points"):
        crop_baseline_band(page, np.zeros((0, 2)), spacing=50.0)


def _page_with_tight_outlines(tmp_path: Path) -> Path:
    """Three lines of tall bars whose outlines (as Transkribus draws some) cover only the lower half of them."""
    page = np.full((400, 500), 230, np.uint8)
    lines = []
    for i in range(3):
        yb = 100 + 100 * i
        for x in range(60, 440, 14):
            page[yb - 50 : yb, x : x + 6] = 20
        poly = f"40,{yb - 25} 460,{yb - 25} 460,{yb + 10} 40,{yb + 10}"
        lines.append(
            f'<TextLine id="l{i}"><Coords points="{poly}"/><Baseline points="50,{yb} 450,{yb}"/>'
            f"<TextEquiv><Unicode>line {i}</Unicode></TextEquiv></TextLine>"
        )
    save_png(page, tmp_path / "p.png")
    xml = (
        '<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15"><Page imageFilename='
        '"p.png" imageWidth="500" imageHeight="400"><TextRegion id="r"><Coords points="0,0 500,0 500,400 0,400"/>'
        + "".join(lines)
        + "</TextRegion></Page></PcGts>"
    )
    (tmp_path / "p.xml").write_text(xml, encoding="utf-8")
    return tmp_path / "p.xml"


def test_outline_crop_erases_strokes_the_band_keeps(tmp_path: Path) -> None:
    _page_with_tight_outlines(tmp_path)
    by_band = open_dataset(tmp_path).samples
    by_outline = open_dataset(tmp_path, line_crop="polygon").samples
    assert [s.line_spacing for s in by_band] == [100.0] * 3
    band, outline = by_band[1].load_image(), by_outline[1].load_image()
    assert band.shape[0] == 80 + 40 + 1
    # the bars are 50 px tall: the band keeps all of each, the outline only its lower 25 px
    assert (band < 100).any(1).sum() == 50
    assert (outline < 100).any(1).sum() == 25
    with pytest.raises(ConfigError, match="line crop"):
        open_dataset(tmp_path, line_crop="diagonal")


def test_box_and_ink_crops(tmp_path: Path) -> None:
    _page_with_tight_outlines(tmp_path)
    box = open_dataset(tmp_path, line_crop="box").samples[1].load_image()
    ink = open_dataset(tmp_path, line_crop="ink").samples[1].load_image()
    # the outline's box, unmasked: 36 rows (yb - 25 .. yb + 10), the lower half of each bar in it
    assert box.shape == (36, 421) and (box < 100).any(1).sum() == 25
    # the ink box takes each bar the outline holds most of, whole (50 rows), and nothing of the lines above
    # and below (bars 50 rows apart from these); a few pixels of paper around it
    rows = (ink < 100).any(1)
    assert rows.sum() == 50 and ink.shape[0] <= 50 + 2 * 6
    assert ink.shape[1] < 421  # tighter than the outline's box


def test_crop_style_names() -> None:
    assert crop_style("baseline") == "band" and crop_style("polygon") == "outline"
    assert crop_style("ink") == "ink"
    with pytest.raises(ConfigError, match="choose from band, outline"):
        crop_style("mixed")
    assert crop_style("mixed", (*LINE_CROPS, "mixed")) == "mixed"


@pytest.mark.parametrize("style", ["band", "outline", "box", "ink"])
def test_varied_cuts_are_reproducible_and_vary(tmp_path: Path, style: str) -> None:
    _page_with_tight_outlines(tmp_path)
    page = cv2.imread(str(tmp_path / "p.png"), cv2.IMREAD_GRAYSCALE)
    s = open_dataset(tmp_path).samples[1]
    geometry = {"polygon": s.polygon, "baseline": s.baseline, "spacing": s.line_spacing}
    plain = cut_line(page, style, **geometry)
    cuts = [cut_line(page, style, rng=np.random.default_rng(k), **geometry) for k in range(6)]
    again = cut_line(page, style, rng=np.random.default_rng(0), **geometry)
    assert np.array_equal(cuts[0], again)
    assert len({c.shape for c in cuts}) > 1  # margins vary
    assert any(c.shape != plain.shape or not np.array_equal(c, plain) for c in cuts)
    # every cut still holds the line's ink
    assert all((c < 100).any(1).sum() >= 20 for c in cuts)


def test_prepared_cache_tells_the_crops_apart(tmp_path: Path) -> None:
    _page_with_tight_outlines(tmp_path)
    cfg = PreprocessConfig(height=32)
    band = prepare_lines(open_dataset(tmp_path).samples, cfg, cache_dir=tmp_path / "cache", progress=False)
    outline = prepare_lines(
        open_dataset(tmp_path, line_crop="polygon").samples, cfg, cache_dir=tmp_path / "cache", progress=False
    )
    assert band.images[0].shape != outline.images[0].shape or not np.array_equal(
        band.images[0], outline.images[0]
    )


@pytest.mark.parametrize(
    ("attr", "expected"),
    [('BASELINE="30"', [[0.0, 30.0], [100.0, 30.0]]), ('BASELINE="0,28 100,32"', [[0, 28], [100, 32]])],
)
def test_alto_baselines(tmp_path: Path, attr: str, expected: list[list[float]]) -> None:
    save_png(np.full((40, 100), 230, np.uint8), tmp_path / "scan.png")
    xml = (
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Description><sourceImageInformation>'
        "<fileName>scan.png</fileName></sourceImageInformation></Description><Layout><Page><PrintSpace>"
        f'<TextBlock><TextLine ID="t" HPOS="0" VPOS="0" WIDTH="100" HEIGHT="40" {attr}>'
        '<String CONTENT="x"/></TextLine></TextBlock></PrintSpace></Page></Layout></alto>'
    )
    (tmp_path / "scan.xml").write_text(xml, encoding="utf-8")
    (sample,) = read_alto_file(tmp_path / "scan.xml")
    assert sample.baseline is not None and np.allclose(sample.baseline, expected)
    assert sample.line_spacing is None  # one line: no spacing, so it is cut by its box
    assert sample.load_image().shape == (40, 100)
    bad = (tmp_path / "scan.xml").read_text().replace(attr, 'BASELINE="3,x"')
    (tmp_path / "scan.xml").write_text(bad, encoding="utf-8")
    problems = Problems("skip")
    (sample,) = read_alto_file(tmp_path / "scan.xml", problems)
    assert sample.baseline is None and "BASELINE" in problems.messages[0]


def test_page_reading_cuts_bands_or_outlines(tmp_path: Path) -> None:
    page = np.full((400, 500), 230, np.uint8)
    for i in range(3):
        yb = 100 + 100 * i
        for x in range(60, 440, 14):
            page[yb - 30 : yb, x : x + 6] = 20
    _, bands, mode = lines_of(page, "page")
    assert mode == "page" and len(bands) == 3
    _, outlines, _ = lines_of(page, "page", line_crop="polygon")
    assert len(outlines) == 3
    assert all(b.shape[0] > 30 and (b < 100).any(1).sum() >= 28 for b in bands)
    with pytest.raises(ConfigError, match="line crop"):
        lines_of(page, "page", line_crop="box")  # a page's found lines are cut as bands or outlines


def test_page_bands_of_widely_spaced_lines_are_capped_in_character_heights() -> None:
    page = np.full((800, 500), 230, np.uint8)
    for i in range(3):
        yb = 150 + 250 * i  # lines 250 px apart, letters 30 px tall: double-spaced and more
        for x in range(60, 440, 14):
            page[yb - 30 : yb, x : x + 6] = 20
    layout, bands, _ = lines_of(page, "page")
    assert len(bands) == 3 and layout.char_height > 0
    assert all(b.shape[0] <= 1.2 * 3.5 * layout.char_height + 2 for b in bands)
    assert all(b.shape[0] < 1.2 * 250 for b in bands)
    assert all((b < 100).any(1).sum() >= 28 for b in bands)


def test_prepared_cache_follows_image_bytes_not_paths_or_times(tmp_path: Path) -> None:
    """A dataset copied elsewhere (new paths, new mtimes) reuses its cache; an image edited in place to the same
    size does not."""
    src = tmp_path / "a"
    src.mkdir()
    _page_with_tight_outlines(src)
    cache, cfg = tmp_path / "cache", PreprocessConfig(height=32)
    first = prepare_lines(open_dataset(src).samples, cfg, cache_dir=cache, progress=False)
    [made] = list(cache.glob("lines-*.npz"))
    copy = tmp_path / "b"
    shutil.copytree(src, copy)  # copytree keeps mtimes: touch the copy to be sure they differ
    os.utime(copy / "p.png", (1, 1))
    again = prepare_lines(open_dataset(copy).samples, cfg, cache_dir=cache, progress=False)
    assert list(cache.glob("lines-*.npz")) == [made]
    assert all(np.array_equal(a, b) for a, b in zip(first.images, again.images))

    page = np.asarray(Image.open(copy / "p.png")).copy()
    page[90:100, 60:70] = 0  # a blot on line 0: same size, same name
    save_png(page, copy / "p.png")
    edited = prepare_lines(open_dataset(copy).samples, cfg, cache_dir=cache, progress=False)
    assert len(list(cache.glob("lines-*.npz"))) == 2
    assert not np.array_equal(edited.images[0], first.images[0])


def test_prepared_cache_drops_least_recently_used_files_over_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _page_with_tight_outlines(tmp_path)
    samples, cache = open_dataset(tmp_path).samples, tmp_path / "cache"

    def prep(pad: int) -> Path:  # configurations whose files are about the same size
        before = set(cache.glob("lines-*.npz"))
        prepare_lines(samples, PreprocessConfig(height=32, pad=pad), cache_dir=cache, progress=False)
        new = set(cache.glob("lines-*.npz")) - before
        return new.pop() if new else Path()

    monkeypatch.setenv("HTRLAB_CACHE_MAX_GB", "0")  # no limit
    files = [prep(pad) for pad in (8, 9, 10)]
    for i, f in enumerate(files):  # written in this order, a second apart
        os.utime(f, (1000 + i, 1000 + i))
    size = sum(f.stat().st_size for f in files)
    prep(8)  # a cache hit: the oldest file becomes the most recently used
    assert files[0].stat().st_mtime > 1002
    # room for about three files: a fourth evicts the least recently used (pad 9)
    monkeypatch.setenv("HTRLAB_CACHE_MAX_GB", str(size * 1.2 / 1e9))
    newest = prep(11)
    assert newest.is_file() and files[0].is_file() and files[2].is_file()
    assert not files[1].is_file()
    assert "removed 1 least recently used" in capsys.readouterr().err
    # the file just written stays, even alone over the limit
    monkeypatch.setenv("HTRLAB_CACHE_MAX_GB", "1e-9")
    last = prep(12)
    assert [p.name for p in cache.glob("lines-*.npz")] == [last.name]
    monkeypatch.setenv("HTRLAB_CACHE_MAX_GB", "lots")
    with pytest.raises(ConfigError, match="HTRLAB_CACHE_MAX_GB"):
        prep(13)
