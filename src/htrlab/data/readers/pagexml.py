"""PAGE-XML pages (2010, 2013 and 2019 schemas): one LineSample per TextLine, in reading order."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from htrlab.data.images import parse_points
from htrlab.data.readers.common import Problems, local, page_image, parse_xml, set_line_spacing
from htrlab.data.sample import LineSample
from htrlab.errors import DataError
from htrlab.text.normalize import normalize_text

_RO_INDEX = re.compile(r"readingOrder\s*\{[^}]*index:\s*(\d+)")


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if local(c.tag) == name]


def _custom_index(el: etree._Element) -> int | None:
    m = _RO_INDEX.search(el.get("custom", ""))
    return int(m.group(1)) if m else None


def line_text(line: etree._Element, source: str) -> str:
    """The line's own TextEquiv (not its Words'); with several, the one with index 0 or the first.

    Raises:
        DataError: the text holds an entity reference (``&kew;``): htrlab never expands entities, and the text
            around it alone would be a wrong transcription.
    """
    equivs = _children(line, "TextEquiv")
    if not equivs:
        return ""
    equivs.sort(key=lambda e: _int_or(e.get("index"), 0))
    uni = _children(equivs[0], "Unicode")
    if not uni:
        return ""
    entities = [e for e in uni[0].iter() if isinstance(e, etree._Entity)]
    if entities:
        raise DataError(
            f"{source}: transcription holds the entity reference {entities[0].text}, which htrlab does not "
            "expand (XML entities are never resolved); write the character itself"
        )
    return normalize_text("".join(uni[0].itertext()))


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text or default)
    except ValueError:
        return default


def _regions_in_order(page: etree._Element) -> list[etree._Element]:
    """Text regions (nested ones too) ordered by the page's ReadingOrder, then document order."""
    regions = [el for el in page.iter() if local(el.tag) == "TextRegion"]
    order: dict[str, int] = {}
    for ro in page.iter():
        if local(ro.tag) == "RegionRefIndexed":
            ref = ro.get("regionRef")
            if ref is not None and ref not in order:
                order[ref] = _int_or(ro.get("index"), 0)
    if not order:
        return regions
    big = len(order) + len(regions)
    return sorted(regions, key=lambda r: (order.get(r.get("id", ""), big), regions.index(r)))


def read_page_file(
    xml_path: str | Path,
    problems: Problems | None = None,
    split: str | None = None,
    dataset_root: Path | None = None,
) -> list[LineSample]:
    """Read the text lines of one PAGE-XML file.

    Args:
        xml_path: the PAGE-XML file.
        problems: error policy; lines without coordinates or with malformed points are reported there.
        split: split name given to every line (whole pages go to one split).
        dataset_root: the dataset folder the page image must lie in (default: the XML's folder's parent); see
            :func:`~htrlab.data.readers.common.page_image`.

    Raises:
        DataError: for malformed XML, a file that is not PAGE-XML, or a missing page image.
    """
    xml_path = Path(xml_path)
    problems = problems if problems is not None else Problems()
    root = parse_xml(xml_path)
    if local(root.tag) != "PcGts":
        raise DataError(f"{xml_path} is not PAGE-XML (root element <{local(root.tag)}>, expected <PcGts>)")
    pages = _children(root, "Page")
    if not pages:
        raise DataError(f"{xml_path}: PAGE-XML without a <Page> element")
    page = pages[0]
    fname = page.get("imageFilename")
    if not fname:
        raise DataError(f"{xml_path}: <Page> has no imageFilename")
    image_path = page_image(xml_path, fname, dataset_root)
    doc_id = xml_path.stem
    samples: list[LineSample] = []
    for region in _regions_in_order(page):
        lines = _children(region, "TextLine")
        keyed = [(_custom_index(ln), i, ln) for i, ln in enumerate(lines)]
        if all(k is not None for k, _, _ in keyed):
            keyed.sort(key=lambda t: (t[0], t[1]))
        for _, i, line in keyed:
            lid = line.get("id") or f"{region.get('id', 'r')}_l{i}"
            source = f"{xml_path} line {lid}"
            coords = _children(line, "Coords")
            if not coords or not coords[0].get("points"):
                problems.report(f"{source}: TextLine has no Coords points")
                continue
            try:
                poly = parse_points(coords[0].get("points", ""), source)
            except DataError as exc:
                problems.report(str(exc))
                continue
            baseline = None
            base_el = _children(line, "Baseline")
            if base_el and base_el[0].get("points"):
                try:
                    baseline = parse_points(base_el[0].get("points", ""), f"{source} Baseline")
                except DataError as exc:  # the polygon still gives a crop: report, keep the line
                    problems.report(str(exc))
            try:
                text = line_text(line, source)
            except DataError as exc:
                problems.report(str(exc))
                continue
            samples.append(
                LineSample(
                    id=f"{doc_id}/{lid}",
                    text=text,
                    image_path=image_path,
                    doc_id=doc_id,
                    split=split,
                    polygon=poly,
                    baseline=baseline,
                )
            )
    set_line_spacing(samples)
    return samples
