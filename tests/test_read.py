"""The Python API (``htrlab.load`` -> ``Reader.read``): the README's three lines, every input kind, bad inputs,
decoder settings, the results' JSON and XML, and an ``import htrlab`` that stays light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.test_documents import save_pdf

import htrlab
from htrlab.bundled import example_images
from htrlab.cli.main import main
from htrlab.decoding.config import DecoderConfig
from htrlab.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reader() -> htrlab.Reader:
    return htrlab.load()


def test_the_readme_example_reads_what_recognize_reads(
    reader: htrlab.Reader, capsys: pytest.CaptureFixture[str]
) -> None:
    image = example_images()[0]
    page = reader.read(image)  # README: reader = htrlab.load(); page = reader.read("line.png"); page.text
    assert isinstance(page, htrlab.Page) and page.mode == "line" and 0 < page.confidence <= 1
    assert main(["recognize", str(image), "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out) == page.to_dict()
    assert page.text == "My dear Dyer, I return the letter"  # the bundled example's transcription


def test_the_readme_python_block_runs_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README.md has no Python example"
    monkeypatch.chdir(ROOT)
    exec(compile(blocks[0], "README.md", "exec"), {})
    text, conf = capsys.readouterr().out.strip().rsplit(" ", 1)
    assert text == "My dear Dyer, I return the letter" and 0.5 < float(conf) <= 1


def test_every_input_kind_reads_the_same(reader: htrlab.Reader) -> None:
    path = example_images()[1]
    pil = Image.open(path)
    gray = np.asarray(pil.convert("L"))
    rgb = np.asarray(pil.convert("RGB"))
    want = reader.read(str(path)).text
    for image in (path, pil, gray, rgb, gray.astype(np.float32) / 255.0):
        assert reader.read(image).text == want
    pages = reader.read([path, gray])
    assert isinstance(pages, list) and [p.text for p in pages] == [want, want]
    assert pages[1].source == "<array 1>" and pages[1].path is None
    assert [text for text, _ in reader.read_lines([pil, gray])] == [want, want]  # each image as one line


def test_a_pdf_gives_a_page_each(reader: htrlab.Reader, tmp_path: Path) -> None:
    lines = [np.asarray(Image.open(p).convert("L")) for p in example_images()[:2]]
    pdf = save_pdf(lines, tmp_path / "two.pdf")
    pages = reader.read(pdf, layout="line")
    assert isinstance(pages, list) and [p.page for p in pages] == [1, 2]
    assert pages[0].source.endswith("two.pdf#page=1") and all(p.text for p in pages)
    folder = tmp_path / "one"
    folder.mkdir()
    Image.open(example_images()[0]).save(folder / "a.png")
    in_folder = reader.read(folder)
    assert isinstance(in_folder, list) and len(in_folder) == 1  # a folder gives a list, even of one


def test_bad_inputs_are_one_line_errors_and_skip_keeps_going(reader: htrlab.Reader, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    good = example_images()[0]
    with pytest.raises(DataError, match="broken.png") as err:
        reader.read(bad)
    assert "\n" not in str(err.value)
    pages = reader.read(
        [good, bad, example_images()[1]], on_error="skip"
    )  # (a file named twice is read once)
    assert [p.error is None for p in pages] == [True, False, True]
    assert "broken.png" in pages[1].to_dict()["error"] and pages[1].text == ""
    with pytest.raises(DataError, match="shape"):
        reader.read(np.zeros((2, 3, 7), np.uint8))
    with pytest.raises(DataError, match="dtype|float"):
        reader.read(np.full((40, 200), 3.0))
    with pytest.raises(ConfigError, match="dict"):
        reader.read({"image": 1})
    with pytest.raises(ConfigError, match="layout"):
        reader.read(good, layout="poster")


def test_decoder_settings_come_from_one_config(reader: htrlab.Reader) -> None:
    bundled = json.loads(
        (Path(htrlab.__file__).parent / "weights" / "htrlab-default.decoding.json").read_text()
    )["settings"]
    cfg = reader.decoder_config
    assert cfg.decoder == bundled["decoder"] and cfg.lm_weight == bundled["lm_weight"]
    assert cfg.beam_size == bundled["beam_size"] and Path(str(cfg.lm)).name == bundled["lm"]
    assert htrlab.load(decoder="greedy").decoder is None
    own = htrlab.load(decoder=DecoderConfig(decoder="beam", beam_size=4))
    assert own.decoder is not None and own.decoder_config.beam_size == 4 and own.decoder_config.lm is None
    with pytest.raises(ConfigError, match="unknown decoder"):
        htrlab.load(decoder="viterbi")
    assert DecoderConfig().filled({"beam_size": "8", "lm_weight": 2}, given={"lm_weight"}).beam_size == 8


def test_a_page_saves_as_page_xml_with_its_image(reader: htrlab.Reader, tmp_path: Path) -> None:
    from htrlab.segment.export import read_layout

    gray = np.asarray(Image.open(example_images()[2]).convert("L"))
    page = reader.read(gray, keep_images=True)
    xml = page.save_xml(tmp_path / "out" / "line.xml")
    assert (tmp_path / "out" / "line.png").is_file()  # an array has no file: its pixels go beside the XML
    layout, image_name = read_layout(xml)
    assert image_name == "line.png" and [ln.text for ln in layout.lines] == [page.text]
    own = reader.read(example_images()[2]).save_xml(tmp_path / "own" / "line.xml", "alto")
    _, named = read_layout(own)  # an image file of its own is named, not copied
    assert (tmp_path / "own" / named).resolve() == example_images()[2].resolve()
    assert not (tmp_path / "own" / "line.png").exists()
    with pytest.raises(DataError, match="no pixels"):
        reader.read(gray).save_xml(tmp_path / "x.xml")


def test_segment_and_evaluate_read_through_the_same_reader(reader: htrlab.Reader, tmp_path: Path) -> None:
    """``find_lines`` (``htrlab segment``) finds the lines ``read`` reads, without reading them, and needs no
    model unless the orientation is checked; ``read_prepared`` (``htrlab evaluate``) reads cached lines as
    ``read`` reads line images."""
    from htrlab.data.preprocess import preprocess
    from htrlab.read import Reader, sources_of

    pdf = tmp_path / "two.pdf"
    Image.open(example_images()[0]).convert("RGB").save(
        pdf, save_all=True, append_images=[Image.new("RGB", (9, 9))]
    )
    read = reader.read(pdf, layout="page", line_crop="outline", orientation="0", on_error="skip")
    no_model = Reader(None, None, DecoderConfig(decoder="greedy"), reader.segment)
    found = list(no_model.find_lines(sources_of(pdf), orientation="0", on_error="skip"))
    assert [p.source for p in found] == [p.source for p in read] and found[0].image is not None
    assert [ln.box for ln in found[0].lines] == [ln.box for ln in read[0].lines] and found[0].lines
    assert all(ln.text == "" for ln in found[0].lines) and read[0].text
    assert found[1].error is None and not found[1].lines and not read[1].lines  # a blank page: no lines
    line = np.asarray(Image.open(example_images()[2]).convert("L"))
    [(text, conf)] = reader.read_lines([line])
    [d] = reader.read_prepared([preprocess(line, reader.preprocess)])
    assert (d.text, d.confidence) == (text, conf)
    assert Reader.of(reader.engine).read_prepared([preprocess(line, reader.preprocess)])[0].text != ""


def test_import_htrlab_stays_light() -> None:
    probe = "import sys, htrlab; print('torch' in sys.modules, htrlab.__version__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"
