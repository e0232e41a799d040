"""Line segmentation: lines of a rendered page are found in reading order (also when the page is skewed),
scored by IoU matching, written as PAGE-XML 2019 / ALTO v4 that htrlab's readers read back, and used by
``recognize --layout`` and ``segment``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import HOOKER, render_line, save_png
from htrlab.cli.main import main
from htrlab.data.layout import PageLayout, TextLine
from htrlab.data.linecrop import cut_found_line
from htrlab.data.readers.alto import read_alto_file
from htrlab.data.readers.pagexml import read_page_file
from htrlab.errors import ConfigError, DataError
from htrlab.segment import segment_lines
from htrlab.segment.evaluate import match_lines
from htrlab.segment.export import read_layout, write_alto, write_page_xml
from htrlab.segment.lines import reading_order
from htrlab.segment.read import lines_of

PAGE_TEXT = [
    "My dear Dyer, I return the letter",
    "with many thanks for the seeds",
    "which came safely to Kew last week",
    "and are now in the houses.",
    "Ever yours truly",
]


def make_page(angle: float = 0.0, texts: list[str] = PAGE_TEXT) -> tuple[np.ndarray, list[np.ndarray]]:
    """A page with one rendered line per text, 30 px apart, rotated by ``angle`` degrees; returns the page and
    the true line boxes as polygons."""
    rows = [render_line(t, size=30, seed=i) for i, t in enumerate(texts)]
    width = max(r.shape[1] for r in rows) + 120
    height = sum(r.shape[0] for r in rows) + 30 * len(rows) + 120
    page = np.full((height, width), 235, np.uint8)
    boxes, y = [], 60
    for r in rows:
        page[y : y + r.shape[0], 60 : 60 + r.shape[1]] = r
        boxes.append(
            np.array([[60, y], [60 + r.shape[1], y], [60 + r.shape[1], y + r.shape[0]], [60, y + r.shape[0]]])
        )
        y += r.shape[0] + 30
    if angle:
        m = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        page = cv2.warpAffine(page, m, (width, height), borderValue=235)
        boxes = [np.round(np.hstack([b, np.ones((4, 1))]) @ m.T).astype(int) for b in boxes]
    return page, boxes


@pytest.mark.parametrize("angle", [0.0, 3.0])
def test_lines_of_a_page_are_found_in_reading_order(angle: float) -> None:
    page, boxes = make_page(angle)
    layout = segment_lines(page)
    assert len(layout.lines) == len(PAGE_TEXT)
    score = match_lines([ln.polygon for ln in layout.lines], boxes)
    assert score.f1 == 1.0 and score.mean_iou > 0.5
    tops = [float(ln.baseline[:, 1].mean()) for ln in layout.lines]
    assert tops == sorted(tops)
    assert abs(layout.skew_degrees - angle) <= 1.0
    # crops come out upright: a straight line's crop is about as tall as the rendered line
    crop = cut_found_line(page, layout.lines[0])
    assert crop.shape[0] < 2.2 * (boxes[0][:, 1].max() - boxes[0][:, 1].min())


def _line(x0: float, y0: float, x1: float, y1: float, height: float = 40.0, name: str = "") -> TextLine:
    """A line with a straight baseline from (x0, y0) to (x1, y1) and a box ``height`` above it."""
    base = np.array([[x0, y0], [x1, y1]])
    top, bottom = min(y0, y1) - height, max(y0, y1) + 10
    box = (int(x0), int(top), int(x1 - x0), int(bottom - top))
    poly = np.array([[x0, top], [x1, top], [x1, bottom], [x0, bottom]])
    return TextLine(poly, base, box, id=name)


def test_reading_order_keeps_sloping_lines_whose_boxes_overlap_in_order() -> None:
    # two lines rising to the right, 60 px apart: their boxes overlap by most of their height, and the lower
    # one starts further left -- sorting boxes as rows and rows by x put it first
    upper = _line(150, 300, 1200, 180, name="upper")
    lower = _line(100, 360, 1200, 240, name="lower")
    assert [ln.id for ln in reading_order([lower, upper])] == ["upper", "lower"]
    assert [ln.id for ln in reading_order([upper, lower])] == ["upper", "lower"]


def test_reading_order_side_by_side_lines_left_to_right_then_down() -> None:
    place = _line(100, 100, 400, 100, name="place")
    date = _line(900, 95, 1300, 92, name="date")  # a little higher, same row
    body1 = _line(100, 200, 1300, 200, name="body1")
    body2 = _line(100, 300, 1300, 300, name="body2")
    short = _line(100, 400, 300, 400, name="short")  # a short last line, then a signature on the right
    sign = _line(800, 470, 1250, 470, name="sign")
    got = reading_order([sign, body2, date, short, body1, place])
    assert [ln.id for ln in got] == ["place", "date", "body1", "body2", "short", "sign"]
    assert reading_order([]) == [] and [ln.id for ln in reading_order([place])] == ["place"]


def test_auto_layout_reads_a_line_as_a_line_and_a_page_as_lines() -> None:
    line = render_line("a single line of writing", size=30)
    _, crops, mode = lines_of(line, "auto")
    assert mode == "line" and len(crops) == 1
    # the crop is the line trimmed to its ink (plus a few pixels), never cut inside the writing
    assert crops[0].shape[0] <= line.shape[0] and crops[0].shape[1] <= line.shape[1]
    assert crops[0].shape[1] >= line.shape[1] - 2 * 10
    page, _ = make_page()
    _, crops, mode = lines_of(page, "auto")
    assert mode == "page" and len(crops) == len(PAGE_TEXT)
    assert lines_of(page, "line")[2] == "line"
    with pytest.raises(ConfigError, match="layout"):
        lines_of(page, "column")
    with pytest.raises(DataError, match="empty.png"):
        segment_lines(np.zeros((0, 0), np.uint8), source="empty.png")
    assert segment_lines(np.full((200, 300), 240, np.uint8)).lines == []  # a blank page has no lines


def test_match_lines_counts() -> None:
    sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    score = match_lines([sq, sq + 100], [sq, sq + np.array([3, 0]), sq + 500])
    assert (score.predicted, score.reference, score.matched) == (2, 3, 1)
    assert score.precision == 0.5 and score.recall == pytest.approx(1 / 3)
    assert match_lines([], [sq]).f1 == 0.0


def test_page_xml_and_alto_round_trip(tmp_path: Path) -> None:
    page, _ = make_page()
    img = save_png(page, tmp_path / "page.png")
    layout = segment_lines(page)
    for k, ln in enumerate(layout.lines):
        ln.text, ln.confidence = PAGE_TEXT[k], 0.9
    px = write_page_xml(layout, "page.png", tmp_path / "page.xml")
    al = write_alto(layout, "page.png", tmp_path / "alto" / "page.xml")
    (tmp_path / "alto" / "page.png").write_bytes(img.read_bytes())
    # htrlab's dataset readers (used for Transkribus / eScriptorium exports) read both back
    samples = read_page_file(px)
    assert [s.text for s in samples] == PAGE_TEXT
    assert np.array_equal(samples[0].polygon, layout.lines[0].polygon)
    assert [s.text for s in read_alto_file(al)] == PAGE_TEXT
    for path in (px, al):
        back, image = read_layout(path)
        assert image == "page.png" and (back.width, back.height) == (page.shape[1], page.shape[0])
        assert [ln.text for ln in back.lines] == PAGE_TEXT
        assert np.array_equal(back.lines[2].polygon, layout.lines[2].polygon)
        assert np.array_equal(back.lines[2].baseline, layout.lines[2].baseline)
    assert 'xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"' in px.read_text()
    bad = tmp_path / "bad.xml"
    bad.write_text("<html/>")
    with pytest.raises(DataError, match="bad.xml"):
        read_layout(bad)


def test_recognize_layouts_and_segment_command(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, _ = tiny_checkpoint
    page, _ = make_page()
    img = save_png(page, tmp_path / "page.png")
    line = save_png(render_line("the cat sat", size=30), tmp_path / "line.png")
    assert main(["recognize", "-m", str(ckpt), "--format", "jsonl", str(img), str(line)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert rows[0]["layout"] == "page" and len(rows[0]["lines"]) == len(PAGE_TEXT)
    assert rows[1]["layout"] == "line" and len(rows[1]["lines"]) == 1
    assert {"box", "polygon", "baseline", "confidence", "text"} <= set(rows[0]["lines"][0])
    assert main(["recognize", "-m", str(ckpt), "--layout", "line", str(img)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    out = tmp_path / "xml"
    show = tmp_path / "show"
    args = [
        "recognize",
        "-m",
        str(ckpt),
        "--format",
        "page-xml",
        "-o",
        str(out),
        "--show",
        str(show),
        str(img),
    ]
    assert main(args) == 0
    assert len(read_page_file(out / "page.xml")) == len(PAGE_TEXT)
    assert (show / "page.lines.png").is_file()
    assert main(["recognize", "-m", str(ckpt), "--format", "alto", str(img)]) == 2  # needs -o
    assert main(["segment", str(img), "-o", str(tmp_path / "seg.xml"), "--format", "alto"]) == 0
    assert len(read_layout(tmp_path / "seg.xml")[0].lines) == len(PAGE_TEXT)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["segment", str(bad), "-o", str(tmp_path / "b.xml")]) == 1
    assert "bad.png" in capsys.readouterr().err
    assert main(["segment", str(bad), str(img), "-o", str(tmp_path / "many"), "--on-error", "skip"]) == 0
    assert (tmp_path / "many" / "page.xml").is_file()


@pytest.mark.skipif(not (HOOKER / "splits.tsv").is_file(), reason="Hooker letters not available")
def test_segmenter_on_a_real_hooker_page() -> None:
    xml = HOOKER / "pages" / "JDH_2_16_186_001.xml"
    from htrlab.data.images import load_gray

    samples = read_page_file(xml)
    layout = segment_lines(load_gray(samples[0].image_path))
    score = match_lines([ln.polygon for ln in layout.lines], [s.polygon for s in samples])
    assert score.f1 > 0.7  # 0.93 when written; a regression guard, not a benchmark


def test_photo_like_page_uneven_light_skew_and_size() -> None:
    """A skewed page lit from one side (the left at 45 % brightness), noisy, and three times larger: the lines
    are still found, and polygons come back in the big image's coordinates."""
    page, boxes = make_page(3.0)
    h, w = page.shape
    shade = 0.45 + 0.55 * (np.mgrid[0:h, 0:w][1] / w)
    noise = np.random.default_rng(0).normal(0, 6, page.shape)
    photo = np.clip(page * shade + noise, 0, 255).astype(np.uint8)
    big = cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    for image, scale in ((photo, 1), (big, 3)):
        layout = segment_lines(image)
        score = match_lines([ln.polygon for ln in layout.lines], [b * scale for b in boxes])
        assert len(layout.lines) == len(PAGE_TEXT) and score.f1 == 1.0


def _rows_of_letters(rows: list[int], width: int = 400, char_h: int = 16) -> np.ndarray:
    """Ink (0/1) of letter-like blocks along rows whose baselines are at ``rows``, with a few ascenders."""
    ink = np.zeros((max(rows) + 2 * char_h, width), np.uint8)
    rng = np.random.default_rng(0)
    for base in rows:
        for x in range(5, width - 20, 14):
            top = base - char_h + (int(rng.integers(-8, 0)) if x % 42 == 5 else 0)  # some ascenders
            ink[top:base, x : x + 10] = 1
    return ink


def test_two_rows_run_together_are_split_and_one_row_is_not() -> None:
    from htrlab.segment.lines import _split_rows

    char_h, spacing = 16, 30.0
    two = _rows_of_letters([30, 60], char_h=char_h)
    blob = np.ones_like(two)  # the smear joined both rows into one blob, 1.4 line spacings tall
    parts = _split_rows(blob, two, char_h, spacing)
    assert len(parts) == 2
    for part, base in zip(parts, (30, 60)):
        ys, _ = np.nonzero(part & two)
        assert base - char_h - 8 <= ys.min() and ys.max() < base  # each part holds one row's ink, whole
    one = _rows_of_letters([40], char_h=char_h)
    assert len(_split_rows(np.ones_like(one), one, char_h, spacing)) == 1


def test_cut_lines_both_ways_and_the_more_confident_reading_is_kept() -> None:
    from types import SimpleNamespace

    from htrlab.segment.read import cut_lines, more_confident

    page, _ = make_page()
    layout, bands, mode = lines_of(page, "page")
    outlines = cut_lines(page, layout, "polygon")
    assert mode == "page" and len(bands) == len(outlines) == len(PAGE_TEXT)
    # a band spans the line spacing around the baseline; an outline is trimmed to the line's own ink
    assert all(o.shape[0] < b.shape[0] for o, b in zip(outlines, bands))
    with pytest.raises(ConfigError, match="line crop"):
        cut_lines(page, layout, "box")

    def reading(*conf: float) -> list[SimpleNamespace]:
        return [SimpleNamespace(confidence=c) for c in conf]

    assert more_confident([reading(0.9, 0.5), reading(0.8, 0.8)]) == 1
    assert more_confident([reading(0.9, 0.8), reading(0.8, 0.8)]) == 0
    assert more_confident([reading(0.7)]) == 0
    assert more_confident([[], reading(0.1)]) == 1


@pytest.mark.parametrize("way", ["auto", "baseline", "polygon"])
def test_recognize_line_crop_and_segmenter_options(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], way: str
) -> None:
    ckpt, _ = tiny_checkpoint
    page, _ = make_page()
    img = save_png(page, tmp_path / "page.png")
    for seg in ("learned", "classical"):
        args = ["recognize", "-m", str(ckpt), "--format", "jsonl", "--line-crop", way, "--segmenter", seg]
        assert main([*args, str(img)]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["layout"] == "page" and len(row["lines"]) == len(PAGE_TEXT)
        assert all(0.0 <= ln["confidence"] <= 1.0 for ln in row["lines"])
    missing = tmp_path / "none.safetensors"
    assert main(["recognize", "-m", str(ckpt), "--line-detector", str(missing), str(img)]) == 2
    assert "none.safetensors" in capsys.readouterr().err


def _line_at(x: int, y: int, w: int = 200, h: int = 40, ink: int = 100) -> TextLine:
    poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    return TextLine(poly, np.array([[x, y + h - 8], [x + w, y + h - 8]]), (x, y, w, h), ink=ink)


def test_pieces_of_one_line_side_by_side_are_one_row() -> None:
    from htrlab.segment.read import text_rows

    assert text_rows([], 10.0) == 0
    side_by_side = [_line_at(0, 50), _line_at(260, 55)]  # baselines 5 px apart, characters 10 px tall
    assert text_rows(side_by_side, 10.0) == 1
    assert text_rows([_line_at(0, 0), _line_at(0, 45)], 10.0) == 2  # 4.5 character heights apart
    assert text_rows([_line_at(0, 0), _line_at(0, 15)], 10.0) == 1  # 1.5: the same row


class _Read:
    """A stand-in recogniser: the whole image (the widest crop) read with ``whole``, page lines with ``line``."""

    def __init__(self, line: float, whole: float, whole_width: int) -> None:
        self.line, self.whole, self.whole_width, self.calls = line, whole, whole_width, 0

    def __call__(self, crops: list[np.ndarray]) -> list[object]:
        from types import SimpleNamespace

        self.calls += 1
        return [
            SimpleNamespace(text="x", confidence=self.whole if c.shape[1] >= self.whole_width else self.line)
            for c in crops
        ]


@pytest.mark.parametrize(
    ("line_conf", "whole_conf", "mode"), [(0.95, 0.8, "page"), (0.85, 0.8, "line"), (0.7, 0.8, "line")]
)
def test_a_small_page_stays_a_page_only_when_its_lines_read_as_surely_as_the_whole(
    line_conf: float, whole_conf: float, mode: str
) -> None:
    from htrlab.segment.read import settle_small_page

    gray = np.full((120, 400), 235, np.uint8)
    gray[20:40, 10:380] = 30  # ink from edge to edge: the trimmed whole image is wider than any line crop
    gray[70:90, 10:380] = 30
    found = PageLayout(400, 120, [_line_at(10, 10, 360), _line_at(10, 60, 360)], char_height=10.0)
    cuts = [[gray[10:50, 10:300], gray[60:100, 10:300]]]
    read = _Read(line_conf, whole_conf, whole_width=350)
    known = {0: [None, read([cuts[0][1]])[0]]}  # one line read before (by the orientation check)
    layout, cut, got, readings = settle_small_page(gray, found, cuts, read, known)
    assert got == mode
    if mode == "page":
        assert len(layout.lines) == 2 and cut is cuts and len(readings[0]) == 2 and None not in readings[0]
    else:
        assert len(layout.lines) == 1 and layout.lines[0].box == (0, 0, 400, 120)
        assert len(cut) == 1 and len(cut[0]) == 1 and readings[0][0].confidence == whole_conf


def test_a_page_of_many_rows_is_not_read_again_as_one_line() -> None:
    from htrlab.segment.read import SMALL_PAGE_ROWS, settle_small_page

    lines = [_line_at(10, 10 + 50 * k) for k in range(SMALL_PAGE_ROWS + 1)]
    found = PageLayout(400, 400, lines, char_height=10.0)
    read = _Read(0.1, 0.99, whole_width=1)
    _, _, mode, _ = settle_small_page(np.full((400, 400), 235, np.uint8), found, [[]], read)
    assert mode == "page" and read.calls == 0
