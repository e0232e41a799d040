"""The user's own documents: folders of images, multi-page TIFFs and PDFs are read page by page, blank pages give
no text, and a bad file is reported by name while the others are read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from lxml import etree
from PIL import Image
from rapidfuzz.distance import Levenshtein

from conftest import render_line, save_png
from htrlab.cli.main import main
from htrlab.data.documents import PDF_DPI, PageSource, expand_inputs, page_count, page_sources
from htrlab.data.images import load_gray
from htrlab.errors import DataError, ImageReduced
from htrlab.segment.read import lines_of
from test_segment import PAGE_TEXT, make_page


def blank(h: int = 900, w: int = 700, seed: int = 0, specks: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random((h, w)) < specks, 40, 238).astype(np.uint8)


def save_pdf(pages: list[np.ndarray], path: Path, dpi: float = 150.0) -> Path:
    """A scanned-document PDF: one full-page image per page (as Pillow writes it), at ``dpi``."""
    ims = [Image.fromarray(p) for p in pages]
    ims[0].save(path, save_all=True, append_images=ims[1:], resolution=dpi)
    return path


def test_page_sources_name_pages_as_pdf_open_parameters() -> None:
    assert str(PageSource(Path("a/letter.pdf"), 2)) == "a/letter.pdf#page=2"
    assert PageSource(Path("a/letter.pdf"), 2).stem == "letter-p002"
    assert (
        str(PageSource(Path("a/line.png"))) == "a/line.png" and PageSource(Path("a/line.png")).stem == "line"
    )
    assert PageSource(Path("line.png")).has_image_file
    assert not PageSource(Path("scan.tif"), 1).has_image_file and not PageSource(Path("x.pdf")).has_image_file


def test_a_folder_stands_for_its_images_and_pdfs_sorted_hidden_ones_left_out(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".thumbs").mkdir()
    for name in ["b/2.png", "a.JPG", "c.pdf", "b/1.tif", ".thumbs/x.png", "notes.txt", "a.xml"]:
        (tmp_path / name).write_bytes(b"x")
    found = expand_inputs([tmp_path, tmp_path / "missing.png"])
    rel = [str(p.relative_to(tmp_path)) for p in found]
    assert rel == ["a.JPG", "b/1.tif", "b/2.png", "c.pdf", "missing.png"]  # missing: reported when read
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty holds no image or PDF files"):
        expand_inputs([tmp_path / "empty"])


def test_pages_of_tiffs_and_pdfs_are_counted_and_loaded_one_by_one(tmp_path: Path) -> None:
    one, two = render_line("first page"), blank(120, 300)
    tif = tmp_path / "scan.tif"
    Image.fromarray(one).save(tif, save_all=True, append_images=[Image.fromarray(two)])
    assert page_count(tif) == 2
    assert [str(s) for s in page_sources(tif)] == [f"{tif}#page=1", f"{tif}#page=2"]
    assert np.array_equal(load_gray(tif, 1), one) and np.array_equal(load_gray(tif, 2), two)
    with pytest.raises(DataError, match=r"scan.tif has 2 page\(s\): there is no page 3"):
        load_gray(tif, 3)
    png = save_png(one, tmp_path / "line.png")
    gif = tmp_path / "anim.gif"
    Image.fromarray(one).save(gif, save_all=True, append_images=[Image.fromarray(one[::-1])])
    assert page_sources(png) == [PageSource(png)] and page_count(gif) == 1  # animation frames are no pages

    pdf = save_pdf([one, two, one], tmp_path / "letter.pdf", dpi=150)
    assert page_count(pdf) == 3
    assert [s.page for s in page_sources(pdf)] == [1, 2, 3]
    # a scanned page is rendered at the scan's own resolution: the pixels come back as they were (PDFium may
    # round the size up by a pixel)
    page1 = load_gray(pdf, 1)
    assert abs(page1.shape[0] - one.shape[0]) <= 1 and abs(page1.shape[1] - one.shape[1]) <= 1
    h, w = min(page1.shape[0], one.shape[0]), min(page1.shape[1], one.shape[1])
    assert np.corrcoef(page1[:h, :w].ravel(), one[:h, :w].ravel())[0, 1] > 0.9
    page2 = load_gray(pdf, 2, dpi=300)  # twice the scan's 150 dpi
    assert abs(page2.shape[0] - 2 * two.shape[0]) <= 1 and abs(page2.shape[1] - 2 * two.shape[1]) <= 1
    with pytest.raises(DataError, match="letter.pdf has 3 pages: there is no page 4"):
        load_gray(pdf, 4)


def test_a_pdf_page_that_is_no_scan_is_rendered_at_the_default_resolution(tmp_path: Path) -> None:
    doc = pdfium.PdfDocument.new()
    doc.new_page(144, 72)  # 2 x 1 inches, no image on it
    path = tmp_path / "typeset.pdf"
    doc.save(str(path))
    doc.close()
    assert load_gray(path, 1).shape == (round(PDF_DPI), round(2 * PDF_DPI))
    with pytest.warns(ImageReduced, match=r"typeset.pdf#page=1: 90000 dpi would give over .* rendered at"):
        big = load_gray(path, 1, dpi=90000)  # 180,000 x 90,000 pixels: rendered at the dpi that fits
    assert abs(big.shape[1] - 2 * big.shape[0]) <= 1 and big.size <= 200_000_000


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "the file is empty"), (b"%PDF-1.4 broken", "cannot read PDF"), (b"not an image", "not an image")],
)
def test_bad_documents_are_named_with_their_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.pdf" if content.startswith(b"%PDF") else tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"{path.name}.*{problem}|{problem}.*{path.name}"):
        page_count(path)
    with pytest.raises(DataError, match=path.name):
        load_gray(path)


def test_a_blank_page_has_no_lines_where_a_faint_line_is_still_read() -> None:
    for gray in [blank(), blank(specks=0.001)]:  # an empty sheet; scanner specks
        found, crops, mode = lines_of(gray, "auto")
        assert (mode, found.lines, crops) == ("blank", [], [])
    found, crops, mode = lines_of(gray, "line")  # the user said it is a line: it is read
    assert mode == "line" and len(crops) == 1
    found, crops, mode = lines_of(render_line("a line of text"), "auto")
    assert mode == "line" and len(crops) == 1


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a user might have it: a page image, a PDF of a page and a blank back, a broken file."""
    folder = tmp_path_factory.mktemp("docs")
    page, _ = make_page()
    save_png(page, folder / "a-page.png")
    save_pdf([page, blank()], folder / "b-letter.pdf", dpi=100)
    (folder / "c-broken.jpg").write_bytes(b"not an image")
    return folder


def test_recognize_reads_a_folder_page_by_page_and_reports_the_broken_file(
    documents: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "read.jsonl"
    args = ["recognize", "--format", "jsonl", "--on-error", "skip", "-o", str(out), str(documents)]
    assert main(args) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [(Path(r["path"]).name, r["page"]) for r in rows] == [
        ("a-page.png", None),
        ("b-letter.pdf", 1),
        ("b-letter.pdf", 2),
        ("c-broken.jpg", None),
    ]
    assert rows[0]["layout"] == rows[1]["layout"] == "page"
    # the PDF's scan is read at its own resolution, as the image itself is (its JPEG-coded pixels may differ
    # slightly, so the readings may differ by a character or two)
    assert abs(rows[0]["width"] - rows[1]["width"]) <= 1 and abs(rows[0]["height"] - rows[1]["height"]) <= 1
    assert len(rows[0]["lines"]) == len(rows[1]["lines"])
    assert Levenshtein.distance(rows[0]["text"], rows[1]["text"]) <= 0.02 * len(rows[0]["text"])
    assert len(rows[1]["lines"]) == len(PAGE_TEXT) and "seeds" in rows[1]["text"]
    assert (rows[2]["layout"], rows[2]["lines"], rows[2]["text"]) == ("blank", [], "")
    assert "c-broken.jpg" in rows[3]["error"] and "not an image" in rows[3]["error"]
    assert "1 of 4 images or pages could not be read" in capsys.readouterr().err

    # named twice: read once
    assert (
        main(
            [
                "recognize",
                "--on-error",
                "skip",
                str(documents / "b-letter.pdf"),
                str(documents / "b-letter.pdf"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out.splitlines()
    assert (
        text[-1] == f"{documents / 'b-letter.pdf'}#page=2\t\t0.000"
    )  # the blank page is listed, with no text
    assert all(row.startswith(f"{documents / 'b-letter.pdf'}#page=1\t") for row in text[:-1])


def test_recognize_stops_at_a_broken_file_keeping_what_it_read(documents: Path, tmp_path: Path) -> None:
    out = tmp_path / "read.txt"
    # a file that is no image at all stops the run before anything is read (--on-error error, the default)
    assert main(["recognize", "-o", str(out), str(documents)]) == 1
    assert not out.exists()
    # a file whose damage shows only when its pixels are decoded: the pages before it are written out first
    folder = tmp_path / "in"
    folder.mkdir()
    pdf = (documents / "b-letter.pdf").read_bytes()
    (folder / "a.pdf").write_bytes(pdf)
    png = (documents / "a-page.png").read_bytes()
    (folder / "b-truncated.png").write_bytes(png[: len(png) // 2])
    assert main(["recognize", "-o", str(out), str(folder)]) == 1
    rows = out.read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(PAGE_TEXT) + 1
    assert {r.split("\t")[0] for r in rows} == {f"{folder / 'a.pdf'}#page=1", f"{folder / 'a.pdf'}#page=2"}


def test_pdf_pages_get_page_xml_with_the_image_it_refers_to(documents: Path, tmp_path: Path) -> None:
    pdf = documents / "b-letter.pdf"
    assert main(["recognize", "--format", "page-xml", "-o", str(tmp_path), str(pdf)]) == 0
    assert main(["segment", "--format", "alto", "-o", str(tmp_path / "alto"), str(pdf)]) == 0
    for xml, attr in [
        (tmp_path / "b-letter-p001.xml", "imageFilename"),
        (tmp_path / "alto/b-letter-p001.xml", ""),
    ]:
        root = etree.parse(str(xml)).getroot()
        if attr:
            page = root.find(".//{*}Page")
            image = xml.parent / page.get(attr)
            assert (int(page.get("imageWidth")), int(page.get("imageHeight"))) == Image.open(image).size
            assert len(root.findall(".//{*}TextLine")) == len(PAGE_TEXT)
        else:
            image = xml.parent / root.find(".//{*}fileName").text
            assert len(root.findall(".//{*}TextLine")) == len(PAGE_TEXT)
        assert image == xml.with_suffix(".png") and image.is_file()
    assert (tmp_path / "b-letter-p002.xml").is_file()  # the blank page: a page with no lines


def test_two_inputs_that_would_write_one_xml_file_are_refused_before_reading(tmp_path: Path) -> None:
    page, _ = make_page()
    save_png(page, tmp_path / "in" / "a.png")
    Image.fromarray(page).save(tmp_path / "in" / "a.jpg")
    assert main(["segment", "-o", str(tmp_path / "out"), str(tmp_path / "in")]) == 2
    assert not (tmp_path / "out").exists()


def test_recognize_names_a_bomb_and_a_link_loop_and_reads_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IEND", b""))
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    save_png(render_line("hello world"), tmp_path / "good.png")
    files = [str(tmp_path / n) for n in ("bomb.png", "a.png", "good.png")]
    assert main(["recognize", *files, "--on-error", "skip", "--layout", "line"]) == 0
    out, err = capsys.readouterr()
    rows = {Path(r.split("\t")[0]).name: r for r in out.splitlines()}
    assert "too large: 100000x100000 pixels" in rows["bomb.png"]
    assert "symbolic link that leads nowhere" in rows["a.png"]
    assert "ERROR" not in rows["good.png"] and "Traceback" not in err
    assert main(["recognize", str(tmp_path), "--on-error", "skip"]) == 0  # the same as a folder


def test_reading_a_folder_again_leaves_out_what_htrlab_wrote_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from htrlab.data.images import htrlab_output

    folder = tmp_path / "scans"
    save_png(render_line("hello world"), folder / "line.png")
    save_pdf([blank(300, 400)], folder / "letter.pdf")
    args = ["--layout", "line", "--on-error", "skip"]
    assert main(["recognize", str(folder), *args, "--show", str(folder)]) == 0
    assert main(["recognize", str(folder), *args, "--format", "page-xml", "-o", str(folder)]) == 0
    drawn = folder / "line.lines.png"
    assert htrlab_output(drawn) == "lines drawn on a page"
    assert htrlab_output(folder / "letter-p001.png") == "page image for its XML"
    assert htrlab_output(folder / "line.png") is None
    capsys.readouterr()
    assert main(["recognize", str(folder), *args]) == 0
    out, err = capsys.readouterr()
    assert sorted(Path(r.split("\t")[0]).name for r in out.splitlines()) == ["letter.pdf#page=1", "line.png"]
    assert "left out 3 image(s) htrlab wrote itself" in err
    assert main(["recognize", str(drawn), *args]) == 0  # named on its own: read
    assert "line.lines.png" in capsys.readouterr().out
