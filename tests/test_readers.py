"""Every reader on good and malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import IAM_SAMPLE, make_page, render_line, save_png
from htrlab.data import open_dataset
from htrlab.data.dataset import detect_format
from htrlab.data.images import load_gray
from htrlab.data.linecrop import crop_polygon
from htrlab.data.readers import Problems, read_alto_file, read_bentham, read_cvl, read_iam, read_page_file
from htrlab.data.readers.cvl import is_english
from htrlab.errors import DataError, ImageReduced

TEXTS = ["first line here", "second line", "third one"]


@pytest.mark.parametrize("schema", ["2013-07-15", "2019-07-15"])
def test_page_xml_reads_lines_in_reading_order(tmp_path: Path, schema: str) -> None:
    xml = make_page(tmp_path, TEXTS, schema=schema)
    samples = read_page_file(xml)
    assert [s.text for s in samples] == TEXTS
    assert samples[0].id == "page1/l0"
    img = samples[1].load_image()
    assert img.ndim == 2 and img.dtype == np.uint8
    assert 20 < img.shape[0] < 80


def test_page_polygon_crop_masks_neighbouring_strokes() -> None:
    page = np.full((100, 100), 230, np.uint8)
    page[10:20, 10:90] = 0  # a stroke of the line above, inside the bounding box but outside the polygon
    page[50:60, 20:80] = 0  # the line's own ink
    poly = np.array([[5, 40], [95, 40], [95, 70], [50, 70], [50, 5], [45, 5], [45, 70], [5, 70]])
    crop = crop_polygon(page, poly)
    # inside the bbox (y 5..70), the stroke at y=10..20 away from x=45..50 is outside the polygon -> paper
    assert crop[10 - 5, 15] >= 200
    assert crop[55 - 5, 30] == 0


def test_page_xml_malformed_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<PcGts><Page imageFilename='x.png'><TextRegion>", encoding="utf-8")
    with pytest.raises(DataError, match=r"malformed XML in .*bad\.xml"):
        read_page_file(bad)


def test_page_xml_wrong_root_and_missing_image(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text("<html/>", encoding="utf-8")
    with pytest.raises(DataError, match="not PAGE-XML"):
        read_page_file(tmp_path / "a.xml")
    (tmp_path / "b.xml").write_text(
        '<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">'
        '<Page imageFilename="nope.png"/></PcGts>',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="nope.png not found"):
        read_page_file(tmp_path / "b.xml")


def test_page_line_without_coords_reported_or_skipped(tmp_path: Path) -> None:
    xml = make_page(tmp_path, TEXTS)
    text = xml.read_text().replace('<Coords points="20,', '<Coords pts="20,', 1)
    xml.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match="no Coords"):
        read_page_file(xml)
    problems = Problems("skip")
    assert len(read_page_file(xml, problems)) == 2
    assert len(problems) == 1


def test_page_dataset_with_splits_tsv(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    make_page(pages, TEXTS, name="p1")
    make_page(pages, ["other text"], name="p2")
    (tmp_path / "splits.tsv").write_text("page\tsplit\np1\ttrain\np2\ttest\n", encoding="utf-8")
    ds = open_dataset(tmp_path)
    assert ds.format == "page"
    assert [len(ds.split(s)) for s in ds.splits] == [3, 1]
    with pytest.raises(DataError, match="no split 'val'"):
        ds.split("val")


def _alto(tmp_path: Path, with_polygon: bool) -> Path:
    img = render_line("hello world")
    save_png(img, tmp_path / "scan.png")
    h, w = img.shape
    shape = f'<Shape><Polygon POINTS="0 0 {w} 0 {w} {h} 0 {h}"/></Shape>' if with_polygon else ""
    xml = (
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Description><sourceImageInformation>'
        "<fileName>scan.png</fileName></sourceImageInformation></Description><Layout><Page><PrintSpace>"
        f'<TextBlock><TextLine ID="tl1" HPOS="0" VPOS="0" WIDTH="{w}" HEIGHT="{h}">{shape}'
        '<String CONTENT="hello"/><SP/><String CONTENT="world"/></TextLine></TextBlock>'
        "</PrintSpace></Page></Layout></alto>"
    )
    path = tmp_path / "scan.xml"
    path.write_text(xml, encoding="utf-8")
    return path


@pytest.mark.parametrize("with_polygon", [True, False])
def test_alto_polygon_and_box(tmp_path: Path, with_polygon: bool) -> None:
    samples = read_alto_file(_alto(tmp_path, with_polygon))
    assert len(samples) == 1
    assert samples[0].text == "hello world"
    assert (samples[0].polygon is not None) == with_polygon
    assert samples[0].load_image().shape == load_gray(tmp_path / "scan.png").shape
    assert detect_format(tmp_path / "scan.xml") == "alto"


def test_alto_bad_box(tmp_path: Path) -> None:
    path = _alto(tmp_path, False)
    path.write_text(path.read_text().replace('HPOS="0"', 'HPOS="left"'), encoding="utf-8")
    with pytest.raises(DataError, match="HPOS"):
        read_alto_file(path)


@pytest.mark.skipif(not IAM_SAMPLE.is_dir(), reason="../shared/data/iam-sample not present")
def test_iam_sample_layout() -> None:
    with pytest.raises(DataError, match="not found"):
        read_iam(IAM_SAMPLE)
    problems = Problems("skip")
    samples = read_iam(IAM_SAMPLE, problems)
    assert {s.id for s in samples} == {"a01-000u-00", "a01-007-04", "a01-007-06"}
    first = next(s for s in samples if s.id == "a01-000u-00")
    assert first.text == "A MOVE to stop Mr. Gaitskell from"
    assert first.writer_id == "000"
    assert first.split == "train"
    assert len(problems) > 10000  # every line without an image is counted, not silently dropped
    assert first.load_image().shape[0] > 20
    ds = open_dataset(IAM_SAMPLE, on_error="skip", iam_protocol="original")
    assert ds.format == "iam" and len(ds.samples) == 3


def test_iam_malformed_line(tmp_path: Path) -> None:
    (tmp_path / "lines.txt").write_text("a01-000u-00 ok 154\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"lines.txt:1: malformed"):
        read_iam(tmp_path)


def test_bentham_layout(tmp_path: Path) -> None:
    for i, t in enumerate(["first bentham line", "second one"]):
        lid = f"116_649_001_01_0{i}"
        save_png(render_line(t), tmp_path / "Images" / "Lines" / f"{lid}.png")
        (tmp_path / "Transcriptions").mkdir(exist_ok=True)
        (tmp_path / "Transcriptions" / f"{lid}.txt").write_text(t + "\n", encoding="utf-8")
    (tmp_path / "Partitions").mkdir()
    (tmp_path / "Partitions" / "TrainLines.lst").write_text("116_649_001_01_00\n116_649_001_01_01\n")
    samples = read_bentham(tmp_path)
    assert [s.text for s in samples] == ["first bentham line", "second one"]
    assert {s.split for s in samples} == {"train"}
    assert samples[0].doc_id == "116_649_001"
    assert open_dataset(tmp_path).format == "bentham"
    (tmp_path / "Transcriptions" / "116_649_001_01_01.txt").unlink()
    with pytest.raises(DataError, match="transcription .* not found"):
        read_bentham(tmp_path)


def _cvl(tmp_path: Path) -> Path:
    def xml(words_per_line: list[list[str]]) -> str:
        regions = "".join(
            '<AttrRegion attrType="2">'
            + "".join(f'<AttrRegion attrType="3" text="{w}"/>' for w in words)
            + "</AttrRegion>"
            for words in words_per_line
        )
        return (
            '<?xml version="1.0" encoding="ISO-8859-1"?><PcGts xmlns="http://schema.primaresearch.org/PAGE/'
            f'gts/pagecontent/2010-03-19"><Page><AttrRegion attrType="1">{regions}</AttrRegion></Page></PcGts>'
        )

    root = tmp_path / "cvl"
    (root / "trainset" / "xml").mkdir(parents=True)
    (root / "trainset" / "xml" / "0001-1_attributes.xml").write_text(
        xml([["the", "tree", "and", "the", "house"], ["of", "the", "garden"]]), encoding="latin-1"
    )
    (root / "trainset" / "xml" / "0001-6_attributes.xml").write_text(
        xml([["Die", "Katze", "und", "der", "Hund"]]), encoding="latin-1"
    )
    for name in ("0001-1-0", "0001-1-1", "0001-6-0"):
        save_png(render_line(name), root / "trainset" / "lines" / "0001" / f"{name}.tif")
    return root


def test_cvl_layout_with_language_filter(tmp_path: Path) -> None:
    root = _cvl(tmp_path)
    en = read_cvl(root)
    assert [s.text for s in en] == ["the tree and the house", "of the garden"]
    assert en[0].writer_id == "0001" and en[0].split == "train"
    assert len(read_cvl(root, language=None)) == 3
    assert open_dataset(root).format == "cvl"
    assert is_english("the cat and the dog") and not is_english("der Hund und die Katze")


def test_folder_and_tsv(line_folder: Path, tmp_path: Path) -> None:
    ds = open_dataset(line_folder)
    assert ds.format == "folder"
    assert ds.splits == ["train", "val", "test"]
    assert [len(ds.split(s)) for s in ds.splits] == [4, 2, 2]
    tsv = tmp_path / "manifest.tsv"
    rows = ["path\ttext\tsplit"] + [
        f"{p.relative_to(tmp_path)}\t{p.with_suffix('.txt').read_text().strip()}\ttrain"
        for p in sorted(line_folder.rglob("*.png"))
    ]
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ds2 = open_dataset(tsv)
    assert ds2.format == "tsv" and len(ds2.split("train")) == 8
    tsv.write_text("missing.png\tsome text\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing.png not found"):
        open_dataset(tsv)
    assert len(open_dataset(tsv, on_error="skip").samples) == 0


def test_folder_missing_transcription(tmp_path: Path) -> None:
    save_png(render_line("x"), tmp_path / "a.png")
    with pytest.raises(DataError, match=r"a.txt not found"):
        open_dataset(tmp_path)


def test_splits_made_by_document_never_by_line(tmp_path: Path) -> None:
    for d in range(30):
        for i in range(3):
            save_png(render_line("ab", size=12), tmp_path / f"doc{d}" / f"l{i}.png")
            (tmp_path / f"doc{d}" / f"l{i}.txt").write_text("ab")
    ds = open_dataset(tmp_path)
    by_doc: dict[str, set] = {}
    for s in ds.samples:
        by_doc.setdefault(s.doc_id, set()).add(s.split)
    assert all(len(v) == 1 for v in by_doc.values())
    assert set(ds.splits) == {"train", "val", "test"}


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_corrupt_images_are_named(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "broken.png"
    p.write_bytes(content)
    with pytest.raises(DataError, match="broken.png"):
        load_gray(p)


def test_huge_image_is_reduced_or_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import htrlab.data.images as images

    save_png(np.zeros((50, 60), np.uint8), tmp_path / "big.png")
    save_png(np.zeros((40, 40), np.uint8), tmp_path / "over.png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "over.jpg")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    monkeypatch.setattr(images, "MAX_REDUCED_PIXELS", 2000)
    images._load_gray_cached.cache_clear()
    with pytest.raises(DataError, match=r"big.png is too large: 60x50 pixels"):
        load_gray(tmp_path / "big.png")
    for name in ("over.png", "over.jpg"):  # over the limit, under the reduced one (JPEG: decoded smaller)
        with pytest.warns(ImageReduced, match=rf"{name}: 40x40 pixels .* read at 32x32"):
            assert load_gray(tmp_path / name).shape == (32, 32)


def test_decompression_bomb_is_refused_by_its_header(tmp_path: Path) -> None:
    """A PNG whose header claims 100,000 x 100,000 pixels (a 60-byte file) is refused before any decoding; Pillow's
    own 89.5 MP limit no longer decides (a 13,000 x 13,000 scan is under htrlab's 200 MP)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def png(w: int, h: int) -> bytes:
        ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\0" * 9)) + chunk(b"IEND", b"")

    (tmp_path / "bomb.png").write_bytes(png(100_000, 100_000))
    with pytest.raises(DataError, match=r"bomb.png is too large: 100000x100000 pixels"):
        load_gray(tmp_path / "bomb.png")
    (tmp_path / "scan.png").write_bytes(png(13_000, 13_000))  # header only: truncated pixel data
    with pytest.raises(DataError, match="cannot read image .*scan.png") as err:
        load_gray(tmp_path / "scan.png")
    assert "too large" not in str(err.value)


def test_image_modes(tmp_path: Path) -> None:
    from PIL import Image

    rgba = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    rgba.save(tmp_path / "alpha.png")
    assert load_gray(tmp_path / "alpha.png").min() == 255  # transparent = paper
    Image.fromarray((np.arange(800).reshape(20, 40) * 60).astype(np.uint16)).save(tmp_path / "deep.png")
    g = load_gray(tmp_path / "deep.png")
    assert g.dtype == np.uint8 and g.max() == 255
    Image.new("CMYK", (30, 10), (0, 0, 0, 255)).save(tmp_path / "cmyk.jpg")
    assert load_gray(tmp_path / "cmyk.jpg").mean() < 50


def test_cvl_missing_xml_and_bad_names(tmp_path: Path) -> None:
    root = _cvl(tmp_path)
    (root / "trainset" / "xml" / "0001-6_attributes.xml").unlink()
    with pytest.raises(DataError, match="0001-6_attributes.xml not found"):
        read_cvl(root)
    save_png(render_line("x"), root / "trainset" / "lines" / "0001" / "badname.tif")
    problems = Problems("skip")
    assert len(read_cvl(root, problems)) == 2
    assert len(problems) == 2
    with pytest.raises(DataError, match="not a CVL root"):
        read_cvl(tmp_path / "nowhere")


def test_tsv_malformed_rows(tmp_path: Path) -> None:
    save_png(render_line("ok"), tmp_path / "a.png")
    tsv = tmp_path / "m.tsv"
    tsv.write_text("a.png\tok\njust-one-column\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m.tsv:2: expected path<TAB>text"):
        open_dataset(tsv)
    ds = open_dataset(tsv, on_error="skip")
    assert [s.text for s in ds.samples] == ["ok"] and len(ds.skipped) == 1
    tsv.write_bytes(b"a.png\t\xff\xfe bad\n")
    with pytest.raises(DataError, match="not UTF-8"):
        open_dataset(tsv)


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "..\\..\\secret.png"])
def test_page_image_outside_the_dataset_is_refused(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    (data / "pages").mkdir(parents=True)
    page = make_page(data / "pages", ["hello world"])
    (tmp_path / "secret.png").write_bytes((data / "pages" / "page1.png").read_bytes())
    (data / "pages" / "page1.png").unlink()
    page.write_text(page.read_text().replace('imageFilename="page1.png"', f'imageFilename="{name}"'))
    with pytest.raises(DataError, match=r"page1\.xml: page image .*(outside the dataset folder|not found)"):
        read_page_file(page, dataset_root=data)
    ds = open_dataset(data, on_error="skip")
    assert ds.samples == [] and "page1.xml" in ds.skipped[0]


def test_page_image_beside_the_xml_or_one_folder_up_is_found(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "pages").mkdir(parents=True)
    page = make_page(data / "pages", ["hello world"])
    (data / "pages" / "page1.png").replace(data / "page1.png")
    for name in ("../page1.png", "/some/other/machine/page1.png"):  # the bare name is looked up inside
        page.write_text(page.read_text().replace('imageFilename="page1.png"', f'imageFilename="{name}"'))
        found = open_dataset(data).samples[0].image_path
        assert found.resolve() == (data / "page1.png").resolve()
        page.write_text(page.read_text().replace(f'imageFilename="{name}"', 'imageFilename="page1.png"'))


def test_alto_image_outside_the_dataset_is_refused(tmp_path: Path) -> None:
    path = _alto(tmp_path, True)
    path.write_text(path.read_text().replace("<fileName>scan.png", "<fileName>../../../etc/hosts"))
    (tmp_path / "scan.png").rename(tmp_path / "other.png")
    with pytest.raises(
        DataError, match=r"scan\.xml: page image path '\.\./\.\./\.\./etc/hosts' leads outside"
    ):
        read_alto_file(path, dataset_root=tmp_path)


def test_page_text_with_an_entity_reference_is_refused_not_cut(tmp_path: Path) -> None:
    page = make_page(tmp_path, ["at kew today", "plain line"], reverse_order=False)
    xml = page.read_text().replace("<Unicode>at kew today", "<Unicode>at &kew; today")
    xml = xml.replace("<PcGts", '<!DOCTYPE PcGts [<!ENTITY kew "Kew">]><PcGts', 1)
    page.write_text(xml.replace('<?xml version="1.0" encoding="UTF-8"?>\n', ""))
    with pytest.raises(DataError, match=r"line l0: transcription holds the entity reference &kew;"):
        read_page_file(page)
    problems = Problems("skip")
    samples = read_page_file(page, problems)
    assert [s.text for s in samples] == ["plain line"] and len(problems) == 1
    # character references and the predefined entities are the text itself
    page.write_text(
        xml.replace("&kew;", "&#233; &amp;").replace('<!DOCTYPE PcGts [<!ENTITY kew "Kew">]>', "")
    )
    assert read_page_file(page)[0].text == "at é & today"


@pytest.mark.parametrize(
    "points, message",
    [
        ("0,0 inf,0 inf,20 0,20", "beyond any page"),
        ("0,0 1e30,0 1e30,20 0,20", "beyond any page"),
        ("0,0 nan,0 5,20 0,20", "beyond any page"),
        ("0,0 900000,0 900000,20 0,20", "far outside the"),
    ],
)
def test_page_coordinates_beyond_the_page_are_refused(tmp_path: Path, points: str, message: str) -> None:
    page = make_page(tmp_path, ["hello world", "second line"], reverse_order=False)
    head, first_line = page.read_text().split("<TextLine ", 1)
    coords = first_line.split('<Coords points="', 1)[1].split('"', 1)[0]
    page.write_text(head + "<TextLine " + first_line.replace(coords, points, 1))
    ds = open_dataset(page, on_error="skip")
    lines = {s.id.split("/")[-1]: s for s in ds.samples}
    if "l0" in lines:  # parsed: refused once its page's size is known, before any array is made from it
        with pytest.raises(DataError, match=rf"line page1/l0: point .* {message}"):
            lines["l0"].load_image()
    else:
        assert any(message in m and "line l0" in m for m in ds.skipped), ds.skipped
    assert lines["l1"].load_image().size > 0


def test_baseline_far_off_the_page_allocates_nothing(tmp_path: Path) -> None:
    page = make_page(tmp_path, ["hello world"])
    xml = page.read_text()
    page.write_text(xml.replace('<Baseline points="', '<Baseline points="0,5 500000,5 ', 1))
    (sample,) = open_dataset(page).samples
    with pytest.raises(DataError, match=r"point \(500000, 5\) lies far outside the \d+ x \d+ page"):
        sample.load_image()
    page.write_text(xml.replace('<Baseline points="', '<Baseline points="0,5 100000000,5 ', 1))
    with pytest.raises(DataError, match=r"Baseline: points beyond any page"):
        open_dataset(page)


def test_alto_box_and_baseline_beyond_any_page(tmp_path: Path) -> None:
    path = _alto(tmp_path, False)
    path.write_text(path.read_text().replace('HPOS="0"', 'HPOS="inf"'))
    with pytest.raises(DataError, match="HPOS"):
        read_alto_file(path)
    path = _alto(tmp_path, False)
    path.write_text(path.read_text().replace("HEIGHT=", 'BASELINE="1e300" HEIGHT='))
    problems = Problems("skip")
    assert read_alto_file(path, problems)[0].baseline is None and "BASELINE" in problems.messages[0]


def test_format_is_detected_from_the_files_that_parse(tmp_path: Path) -> None:
    make_page(tmp_path, ["hello world"], name="b-page")
    (tmp_path / "a-broken.xml").write_text("<PcGts><Page")  # sorts first
    assert detect_format(tmp_path) == "page"
    ds = open_dataset(tmp_path, on_error="skip")
    assert [s.text for s in ds.samples] == ["hello world"] and "a-broken.xml" in ds.skipped[0]
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.xml").write_text("<html/>")
    with pytest.raises(DataError, match=r"no PAGE-XML or ALTO file .*x\.xml: neither"):
        detect_format(only_bad)
