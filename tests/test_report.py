"""Error reports: the analysis on constructed cases, and the CSV, HTML (in a real headless browser) and Excel
files."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import render_line
from htrlab.data.preprocess import PreprocessConfig, preprocess, to_uint8
from htrlab.errors import ConfigError
from htrlab.evaluate.evaluator import SplitResult
from htrlab.evaluate.report import LineRow, char_class, rows_from_results, segments, summarise, write_report

PAIRS = [
    ("the cat sat", "the hat sat"),
    ("Kew 1895", "Kew 1895"),
    ("dear sir,", "dear si"),
    ("on a mat", "on an mat"),
    ("Yours truly", "yours truly"),
]


def _result(split: str = "test") -> SplitResult:
    preds, images = [], []
    for i, (ref, hyp) in enumerate(PAIRS):
        preds.append({"id": f"{split}-{i}", "ref": ref, "hyp": hyp, "confidence": 0.5 + 0.1 * i})
        images.append(to_uint8(preprocess(render_line(ref, seed=i), PreprocessConfig(height=32))))
    return SplitResult(split, len(PAIRS), 0.0, 0.0, 0, 0, 0, 0, 0.0, preds, images)


def test_char_classes_and_segments() -> None:
    assert [char_class(c) for c in "aZ7, é∞"] == [
        "lowercase",
        "capitals",
        "digits",
        "punctuation",
        "spaces",
        "lowercase",
        "punctuation",
    ]
    assert segments("cat", "hat") == [("replace", "c", "h"), ("equal", "at", "at")]
    assert segments("ab", "b") == [("delete", "a", ""), ("equal", "b", "b")]


def test_summary_counts() -> None:
    rows = rows_from_results([_result("train"), _result("test")])
    s = summarise(rows)
    # per split: c->h, Y->y substitutions; ',' and 'r' deleted; 'n' inserted
    assert s.ops == {"replace": 4, "delete": 4, "insert": 2}
    top = {(a, b): n for a, b, n in s.confusions}
    assert top[("c", "h")] == 2 and top[("Y", "y")] == 2 and top[("", "n")] == 2 and top[(",", "")] == 2
    assert s.classes["capitals"]["errors"] == 2
    assert s.classes["punctuation"]["errors"] == 2 and s.classes["punctuation"]["reference_chars"] == 2
    assert [d["split"] for d in s.splits] == ["train", "test"]
    assert s.splits[0]["cer"] == pytest.approx(5 / sum(len(r) for r, _ in PAIRS))
    assert sum(b["lines"] for b in s.by_length) == 10
    assert (
        len(s.by_confidence) == 10
        and s.by_confidence[0]["mean_confidence"] <= s.by_confidence[-1]["mean_confidence"]
    )
    assert s.worst[0].ref == "dear sir," and all(r.cer > 0 for r in s.worst[:8])
    assert LineRow("t", "x", "", "", 1.0, 0, 0, 0).cer == 0.0


def test_csv_report(tmp_path: Path) -> None:
    path = write_report([_result()], tmp_path / "r.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 5 and rows[0]["reference"] == "the cat sat" and rows[0]["hypothesis"] == "the hat sat"
    side = json.loads((tmp_path / "r.summary.json").read_text(encoding="utf-8"))
    assert side["ops"]["replace"] == 2


def test_xlsx_report(tmp_path: Path) -> None:
    from openpyxl import load_workbook
    from openpyxl.cell.rich_text import CellRichText

    path = write_report([_result("train"), _result("test")], tmp_path / "r.xlsx")
    wb = load_workbook(path, rich_text=True)
    assert wb.sheetnames == ["summary", "worst", "lines"]
    lines = wb["lines"]
    assert lines.max_row == 11
    assert lines["B2"].value == "train-0"
    hyp = lines["E2"].value
    assert isinstance(hyp, CellRichText) and str(hyp) == "the hat sat"
    assert len(lines._images) == 10  # a thumbnail per line
    summary_text = " ".join(
        str(c.value) for row in wb["summary"].iter_rows() for c in row if c.value is not None
    )
    assert "most frequent confusions" in summary_text and "CER by confidence decile" in summary_text


def test_unknown_report_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown format '\.pdf'"):
        write_report([_result()], tmp_path / "r.pdf")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_html_report_is_self_contained_and_renders(tmp_path: Path) -> None:
    path = write_report([_result()], tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert text.count("data:image/png;base64,") >= 11  # 5 + 5 worst-line thumbnails + the confusion matrix
    assert '<span class="sub">h</span>' in text
    browser = _chromium()
    if browser is None:
        pytest.skip("no headless Chromium on this machine (Debian package 'chromium'; .ci/run installs it)")
    shot = tmp_path / "shot.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1600",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert "The 5 worst lines" in dom.stdout
    subprocess.run([browser, *flags, f"--screenshot={shot}", path.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[1] == 1200
    assert (img < 100).mean() > 0.005  # text, tables and ink thumbnails were drawn
