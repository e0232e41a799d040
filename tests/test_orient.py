"""Pages turned sideways or upside down: the turn is found (lines running down; the recogniser surer of the
page one way up), undone before reading, and the found lines come back in the coordinates of the image as
given; single lines and words are read as they are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import HOOKER, render_line, save_png
from htrlab.cli.main import main
from htrlab.segment.lines import SegmentConfig, analysis_view
from htrlab.segment.orient import (
    direction_score,
    lines_run_down,
    turn,
    unturn_layout,
    unturn_points,
)
from htrlab.segment.read import lines_of
from test_segment import PAGE_TEXT, make_page


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3, 5])
def test_points_of_a_turned_image_map_back_to_the_same_pixels(quarter_turns: int) -> None:
    gray = np.arange(5 * 7, dtype=np.int32).reshape(5, 7)
    turned = turn(gray, quarter_turns)
    assert turned.shape == (gray.shape if quarter_turns % 2 == 0 else gray.shape[::-1])
    ys, xs = np.mgrid[0 : turned.shape[0], 0 : turned.shape[1]]
    back = unturn_points(np.stack([xs.ravel(), ys.ravel()], 1), quarter_turns, gray.shape).astype(int)
    assert (gray[back[:, 1], back[:, 0]] == turned[ys.ravel(), xs.ravel()]).all()


def test_turn_is_clockwise() -> None:
    gray = np.zeros((2, 3), np.uint8)
    gray[0, 0] = 1  # top left
    assert turn(gray, 1)[0, -1] == 1  # a quarter turn clockwise puts it top right


def test_lines_running_down_are_found_on_pages_only() -> None:
    page, _ = make_page()
    assert not lines_run_down(page)
    assert not lines_run_down(turn(page, 2))
    assert lines_run_down(turn(page, 1)) and lines_run_down(turn(page, 3))
    _, _, binary, _ = analysis_view(page, SegmentConfig().work_side)
    assert direction_score(binary) > 0.3 and direction_score(binary.T) < -0.3
    line = render_line("a single line of text, turned", size=30)
    assert not lines_run_down(turn(line, 1))  # one line: its profiles say nothing, it is read as it is
    assert not lines_run_down(np.full((300, 200), 235, np.uint8))  # no ink


def test_layout_found_on_a_turned_page_is_given_in_the_original_coordinates() -> None:
    page, boxes = make_page()
    sideways = turn(page, 3)  # as scanned: a quarter turn anticlockwise
    found, _, mode = lines_of(turn(sideways, 1), "page", None, "test", "polygon")
    assert mode == "page" and len(found.lines) == len(PAGE_TEXT)
    unturn_layout(found, 1, sideways.shape)
    assert (found.width, found.height) == (sideways.shape[1], sideways.shape[0])
    for ln, box in zip(found.lines, boxes):
        x, y, w, h = ln.box
        assert h > w  # the line runs down the sideways image
        # the true box, turned as the page was: (x, y) -> (y, W - 1 - x)
        true = np.stack([box[:, 1], page.shape[1] - 1 - box[:, 0]], 1)
        assert abs(x + w / 2 - true[:, 0].mean()) < 10 and abs(y + h / 2 - true[:, 1].mean()) < 10
        assert ln.polygon[:, 0].max() < sideways.shape[1] and ln.polygon[:, 1].max() < sideways.shape[0]


@pytest.fixture(scope="module")
def page_readings(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, object]]:
    """The bundled model's jsonl reading of a rendered page given upright and turned by 90, 180, 270 degrees
    clockwise (orientation auto)."""
    folder = tmp_path_factory.mktemp("orient")
    page, _ = make_page()
    paths = [save_png(turn(page, k), folder / f"page-{90 * k}.png") for k in range(4)]
    out = folder / "read.jsonl"
    assert main(["recognize", "--format", "jsonl", "-o", str(out), *map(str, paths)]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    return {90 * k: row for k, row in enumerate(rows)}


@pytest.mark.parametrize("given", [90, 180, 270])
def test_recognize_turns_a_sideways_or_upside_down_page_back(
    page_readings: dict[int, dict[str, object]], given: int
) -> None:
    upright, row = page_readings[0], page_readings[given]
    assert upright["rotation"] == 0
    assert row["rotation"] == (360 - given) % 360, row["text"]
    assert row["layout"] == "page" and row["text"] == upright["text"]
    assert len(str(upright["text"]).splitlines()) == len(PAGE_TEXT)


def test_forced_orientation_and_single_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page, _ = make_page()
    upside_down = save_png(turn(page, 2), tmp_path / "upside-down.png")
    line = save_png(render_line("with many thanks for the seeds", size=30), tmp_path / "line.png")
    args = ["recognize", "--format", "jsonl", str(upside_down), str(line)]
    assert main([*args, "--orientation", "0"]) == 0
    captured = capsys.readouterr()
    read_as_is, line_row = (json.loads(x) for x in captured.out.splitlines())
    assert read_as_is["rotation"] == 0 and "turned" not in captured.err
    assert line_row["rotation"] == 0 and line_row["layout"] == "line"
    assert main([*args, "--orientation", "180"]) == 0
    captured = capsys.readouterr()
    turned, _ = (json.loads(x) for x in captured.out.splitlines())
    assert turned["rotation"] == 180 and turned["text"] != read_as_is["text"]
    assert main([*args]) == 0
    captured = capsys.readouterr()
    auto, auto_line = (json.loads(x) for x in captured.out.splitlines())
    assert auto["rotation"] == 180 and auto["text"] == turned["text"]
    assert auto_line["rotation"] == 0  # a line image is never turned by auto
    assert "upside-down.png: read turned 180 degrees clockwise" in captured.err


def test_the_turn_is_written_to_page_xml_and_alto(tmp_path: Path) -> None:
    from lxml import etree

    from htrlab.segment.export import write_alto, write_page_xml

    page, _ = make_page()
    sideways = turn(page, 3)
    found, _, _ = lines_of(turn(sideways, 1), "page", None, "test", "polygon")
    unturn_layout(found, 1, sideways.shape)
    page_el = etree.parse(str(write_page_xml(found, "p.png", tmp_path / "p.xml"))).getroot()
    assert page_el.find("{*}Page").get("orientation") == "90"
    alto = etree.parse(str(write_alto(found, "p.png", tmp_path / "a.xml"))).getroot()
    assert alto.find(".//{*}TextBlock").get("ROTATION") == "90"
    unturn_layout(found, 0, sideways.shape)  # upright: no attribute
    page_el = etree.parse(str(write_page_xml(found, "p.png", tmp_path / "p0.xml"))).getroot()
    assert page_el.find("{*}Page").get("orientation") is None


@pytest.mark.skipif(not (HOOKER / "splits.tsv").is_file(), reason="Hooker letters not available")
def test_a_real_page_upside_down_that_was_taken_for_one_line() -> None:
    """Hooker JDH_2_16_48_001 (scanned on a dark ground) upside down: a piece of the ground's edge merged into
    a line made the other lines look small, so the page was read as one line and never checked; now it is a
    page, found upside down and turned back."""
    from htrlab.data.images import load_gray
    from htrlab.segment.orient import oriented_line_cuts

    upside_down = turn(load_gray(HOOKER / "pages" / "JDH_2_16_48_001.jpg"), 2)
    assert lines_of(upside_down, "auto")[2] == "page"
    found = oriented_line_cuts(upside_down, read=_bundled_reader())
    assert found.quarter_turns == 2 and found.mode == "page" and len(found.layout.lines) > 10


@pytest.mark.skipif(not (HOOKER / "splits.tsv").is_file(), reason="Hooker letters not available")
@pytest.mark.parametrize("skew", [-3.0, 1.2])
def test_a_real_page_on_a_dark_ground_turned_sideways(skew: float) -> None:
    """Hooker JDH_2_16_48_001, slightly skewed, turned a quarter either way: the edges of the dark ground around
    the sheet are left out of the measure, which they swamped (the page looked upright)."""
    import cv2

    from htrlab.data.images import load_gray

    page = load_gray(HOOKER / "pages" / "JDH_2_16_48_001.jpg")
    h, w = page.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0)
    skewed = cv2.warpAffine(page, m, (w, h), borderValue=int(np.median(page)))
    assert [lines_run_down(turn(skewed, k)) for k in range(4)] == [False, True, False, True]


def _bundled_reader():  # type: ignore[no-untyped-def]
    from htrlab.data.preprocess import preprocess
    from htrlab.read.engines import load_engine
    from htrlab.read.predict import predict

    engine = load_engine("default", "auto", 2)
    return lambda crops: predict(engine, engine.charset, [preprocess(c, engine.preprocess) for c in crops])


@pytest.mark.parametrize("band", [6, 25])
def test_a_dark_scan_border_does_not_hide_which_way_the_lines_run(band: int) -> None:
    """The inner edges of a dark border are long straight runs of ink: left in, they made a sideways page look
    upright (a Hooker page scanned on a dark ground)."""
    page, _ = make_page()
    page[:band], page[-band:], page[:, :band], page[:, -band:] = 25, 25, 25, 25
    assert [lines_run_down(turn(page, k)) for k in range(4)] == [False, True, False, True]
    assert lines_of(page, "auto")[2] == "page"


def test_segment_turns_pages_too_and_keeps_the_coordinates_of_the_image_given(tmp_path: Path) -> None:
    from htrlab.segment.export import read_layout

    page, _ = make_page()
    for k, degrees in [(1, "-90"), (2, "180")]:  # given turned a quarter / a half clockwise
        given = save_png(turn(page, k), tmp_path / f"page-{k}.png")
        out = tmp_path / f"page-{k}.xml"
        assert main(["segment", str(given), "-o", str(out)]) == 0
        xml = out.read_text(encoding="utf-8")
        # the turn that reads it upright: 3 quarters (-90) for a page given a quarter turned, 2 for a half
        assert f'orientation="{degrees}"' in xml
        layout = read_layout(out)[0]
        assert len(layout.lines) == len(PAGE_TEXT)
        height, width = turn(page, k).shape
        for ln in layout.lines:
            x, y, w, h = ln.box
            assert (h > w) if k == 1 else (w > h)  # lines run down the image given a quarter turned
            assert x + w <= width + 1 and y + h <= height + 1
    plain = tmp_path / "plain.xml"
    assert main(["segment", str(given), "-o", str(plain), "--orientation", "0"]) == 0
    assert "orientation=" not in plain.read_text(encoding="utf-8")
