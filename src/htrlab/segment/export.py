"""Page layouts (lines with polygons, baselines and text) to and from PAGE-XML (2019 schema) and ALTO v4.

PAGE-XML is what Transkribus, eScriptorium and kraken exchange; ALTO is the library world's format (kraken and
eScriptorium read it too). One region holds all lines, in reading order (``ReadingOrder`` and ``index`` in
``custom`` for PAGE). Writing goes through lxml; reading back uses the same parser htrlab's dataset readers use.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from lxml import etree

from htrlab.data.images import MAX_COORD, check_on_page, parse_points
from htrlab.data.layout import PageLayout, TextLine
from htrlab.data.readers.alto import line_text as alto_line_text
from htrlab.data.readers.common import local, parse_xml
from htrlab.data.readers.pagexml import line_text as page_line_text
from htrlab.errors import DataError

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _points(pts: np.ndarray, sep: str = ",") -> str:
    return " ".join(f"{int(x)}{sep}{int(y)}" for x, y in np.asarray(pts).reshape(-1, 2))


def _box_polygon(line: TextLine) -> np.ndarray:
    x, y, w, h = line.box
    return np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]])


def write_page_xml(layout: PageLayout, image_name: str, out: str | Path, creator: str = "htrlab") -> Path:
    """Write ``layout`` as PAGE-XML 2019 (``image_name`` is stored as the page's imageFilename)."""
    root = etree.Element(f"{{{PAGE_NS}}}PcGts", nsmap={None: PAGE_NS, "xsi": XSI})
    root.set(
        f"{{{XSI}}}schemaLocation",
        f"{PAGE_NS} http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15/pagecontent.xsd",
    )
    meta = etree.SubElement(root, f"{{{PAGE_NS}}}Metadata")
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    etree.SubElement(meta, f"{{{PAGE_NS}}}Creator").text = creator
    etree.SubElement(meta, f"{{{PAGE_NS}}}Created").text = now
    etree.SubElement(meta, f"{{{PAGE_NS}}}LastChange").text = now
    page = etree.SubElement(
        root,
        f"{{{PAGE_NS}}}Page",
        imageFilename=image_name,
        imageWidth=str(layout.width),
        imageHeight=str(layout.height),
    )
    if layout.quarter_turns % 4:
        # PAGE: the clockwise angle that makes the page upright, in (-180, 180]
        degrees = 90 * (layout.quarter_turns % 4)
        page.set("orientation", str(degrees if degrees <= 180 else degrees - 360))
    if layout.lines:
        ro = etree.SubElement(page, f"{{{PAGE_NS}}}ReadingOrder")
        og = etree.SubElement(ro, f"{{{PAGE_NS}}}OrderedGroup", id="ro1", caption="Regions reading order")
        etree.SubElement(og, f"{{{PAGE_NS}}}RegionRefIndexed", index="0", regionRef="r1")
        region = etree.SubElement(page, f"{{{PAGE_NS}}}TextRegion", id="r1", custom="readingOrder {index:0;}")
        allpts = np.concatenate([ln.polygon for ln in layout.lines])
        x0, y0 = allpts.min(0)
        x1, y1 = allpts.max(0)
        etree.SubElement(
            region, f"{{{PAGE_NS}}}Coords", points=_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
        )
        for i, ln in enumerate(layout.lines):
            el = etree.SubElement(
                region,
                f"{{{PAGE_NS}}}TextLine",
                id=f"r1_{ln.id or f'l{i + 1}'}",
                custom=f"readingOrder {{index:{i};}}",
            )
            poly = ln.polygon if len(ln.polygon) >= 3 else _box_polygon(ln)
            etree.SubElement(el, f"{{{PAGE_NS}}}Coords", points=_points(poly))
            if len(ln.baseline) >= 2:
                etree.SubElement(el, f"{{{PAGE_NS}}}Baseline", points=_points(ln.baseline))
            te = etree.SubElement(el, f"{{{PAGE_NS}}}TextEquiv")
            if ln.confidence is not None:
                te.set("conf", f"{ln.confidence:.4f}")
            etree.SubElement(te, f"{{{PAGE_NS}}}Unicode").text = ln.text
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    etree.ElementTree(root).write(str(out), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


def write_alto(layout: PageLayout, image_name: str, out: str | Path) -> Path:
    """Write ``layout`` as ALTO v4: one TextBlock, a TextLine per line with its polygon (Shape), baseline
    (BASELINE points) and words (String elements separated by SP)."""
    root = etree.Element(f"{{{ALTO_NS}}}alto", nsmap={None: ALTO_NS, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", f"{ALTO_NS} http://www.loc.gov/alto/v4/alto-4-2.xsd")
    desc = etree.SubElement(root, f"{{{ALTO_NS}}}Description")
    etree.SubElement(desc, f"{{{ALTO_NS}}}MeasurementUnit").text = "pixel"
    src = etree.SubElement(desc, f"{{{ALTO_NS}}}sourceImageInformation")
    etree.SubElement(src, f"{{{ALTO_NS}}}fileName").text = image_name
    layout_el = etree.SubElement(root, f"{{{ALTO_NS}}}Layout")
    page = etree.SubElement(
        layout_el,
        f"{{{ALTO_NS}}}Page",
        ID="p1",
        PHYSICAL_IMG_NR="1",
        WIDTH=str(layout.width),
        HEIGHT=str(layout.height),
    )
    ps = etree.SubElement(
        page,
        f"{{{ALTO_NS}}}PrintSpace",
        HPOS="0",
        VPOS="0",
        WIDTH=str(layout.width),
        HEIGHT=str(layout.height),
    )
    block = etree.SubElement(ps, f"{{{ALTO_NS}}}TextBlock", ID="r1")
    if layout.quarter_turns % 4:
        # ALTO: the text's rotation in the image, degrees anticlockwise (a page that needed a quarter turn
        # clockwise holds text turned a quarter anticlockwise)
        block.set("ROTATION", str(90 * (layout.quarter_turns % 4)))
    for i, ln in enumerate(layout.lines):
        x, y, w, h = ln.box
        attrs = {
            "ID": ln.id or f"l{i + 1}",
            "HPOS": str(x),
            "VPOS": str(y),
            "WIDTH": str(w),
            "HEIGHT": str(h),
        }
        if len(ln.baseline) >= 2:
            attrs["BASELINE"] = _points(ln.baseline)
        el = etree.SubElement(block, f"{{{ALTO_NS}}}TextLine", **attrs)
        shape = etree.SubElement(el, f"{{{ALTO_NS}}}Shape")
        poly = ln.polygon if len(ln.polygon) >= 3 else _box_polygon(ln)
        etree.SubElement(shape, f"{{{ALTO_NS}}}Polygon", POINTS=_points(poly, " "))
        for k, word in enumerate(ln.text.split()):
            if k:
                etree.SubElement(el, f"{{{ALTO_NS}}}SP")
            s = etree.SubElement(el, f"{{{ALTO_NS}}}String", CONTENT=word)
            if ln.confidence is not None:
                s.set("WC", f"{ln.confidence:.4f}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    etree.ElementTree(root).write(str(out), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


def write_layout_file(
    fmt: str, layout: PageLayout, gray: np.ndarray | None, target: Path, image: Path | None
) -> Path:
    """PAGE-XML (``fmt="page-xml"``) or ALTO (``"alto"``) of ``layout`` at ``target``, naming ``image`` (the
    file the coordinates refer to); with no such file (an array, a PDF or TIFF page) ``gray`` is
    saved beside the XML as PNG and named instead."""
    import os

    from PIL import Image

    from htrlab.data.images import save_output_image

    if fmt not in ("page-xml", "alto"):
        raise DataError(f"unknown layout format {fmt!r} (page-xml or alto)")
    target.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        if gray is None:
            raise DataError(f"{target}: the page has no image file and no pixels were kept to save beside it")
        image = target.with_suffix(".png")
        save_output_image(Image.fromarray(gray), image, "page image for its XML")
    rel = os.path.relpath(image.resolve(), target.parent.resolve())
    return (write_page_xml if fmt == "page-xml" else write_alto)(layout, rel, target)


def read_layout(path: str | Path) -> tuple[PageLayout, str]:
    """Read a PAGE-XML (2010-2019) or ALTO (v2-v4) file back: (layout, image file name)."""
    path = Path(path)
    root = parse_xml(path)
    kind = local(root.tag)
    lines: list[TextLine] = []
    if kind == "PcGts":
        page = next((e for e in root.iter() if local(e.tag) == "Page"), None)
        if page is None:
            raise DataError(f"{path}: PAGE-XML without a <Page> element")
        w, h = _size(page.get("imageWidth"), path), _size(page.get("imageHeight"), path)
        image = page.get("imageFilename", "")
        for el in (e for e in page.iter() if local(e.tag) == "TextLine"):
            kids = {local(c.tag): c for c in el}
            if "Coords" not in kids:
                raise DataError(f"{path}: TextLine {el.get('id')} has no Coords")
            poly = parse_points(kids["Coords"].get("points", ""), f"{path} line {el.get('id')}")
            base = (
                parse_points(kids["Baseline"].get("points", ""), f"{path} line {el.get('id')}")
                if "Baseline" in kids
                else poly[:0]
            )
            text = page_line_text(el, f"{path} line {el.get('id')}")
            lines.append(_line(poly, base, el.get("id", ""), text, (w, h), path))
    elif kind == "alto":
        page = next((e for e in root.iter() if local(e.tag) == "Page"), None)
        w = _size(page.get("WIDTH"), path) if page is not None else 0
        h = _size(page.get("HEIGHT"), path) if page is not None else 0
        image = next((e.text or "" for e in root.iter() if local(e.tag) == "fileName"), "")
        for el in (e for e in root.iter() if local(e.tag) == "TextLine"):
            src = f"{path} line {el.get('ID')}"
            poly_el = next((p for p in el.iter() if local(p.tag) == "Polygon"), None)
            if poly_el is not None:
                poly = parse_points(poly_el.get("POINTS", ""), src)
            else:
                box = " ".join(el.get(k, "0") for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
                x, y, bw, bh = (int(v) for v in parse_points(box, src).reshape(-1))
                poly = np.array([[x, y], [x + bw - 1, y], [x + bw - 1, y + bh - 1], [x, y + bh - 1]])
            bl = el.get("BASELINE", "")
            base = parse_points(bl, src) if ("," in bl or len(bl.split()) >= 4) else poly[:0]
            lines.append(_line(poly, base, el.get("ID", ""), alto_line_text(el), (w, h), path))
    else:
        raise DataError(f"{path}: neither PAGE-XML nor ALTO (root element <{kind}>)")
    return PageLayout(w, h, lines), image


def _size(value: str | None, path: Path) -> int:
    """A page width or height attribute (0 when absent)."""
    try:
        size = float(value or 0)
        if not 0 <= size <= MAX_COORD:
            raise ValueError(value)
    except ValueError as exc:
        raise DataError(f"{path}: bad page size {str(value)[:40]!r}") from exc
    return int(size)


def _line(
    poly: np.ndarray, base: np.ndarray, lid: str, text: str, size: tuple[int, int], path: Path
) -> TextLine:
    if all(size):  # the page's size is known: no line far off it
        for points in (poly, base):
            check_on_page(points, size[0], size[1], f"{path} line {lid}")
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    return TextLine(poly, base, (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)), lid, text)
