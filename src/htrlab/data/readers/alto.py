"""ALTO XML pages: one LineSample per TextLine (Shape/Polygon when given, else the HPOS/VPOS box)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lxml import etree

from htrlab.data.images import parse_points
from htrlab.data.readers.common import Problems, local, page_image, parse_xml, set_line_spacing
from htrlab.data.sample import LineSample
from htrlab.errors import DataError
from htrlab.text.normalize import normalize_text


def line_text(line: etree._Element) -> str:
    """A TextLine's text (also read by htrlab.segment.export.read_layout).

    Words are <String CONTENT=...>; spaces between them are implied (SP elements only mark them),
    a line-final <HYP> keeps its hyphen.
    """
    words = [el.get("CONTENT", "") for el in line if local(el.tag) == "String"]
    hyp = "".join(el.get("CONTENT", "-") for el in line if local(el.tag) == "HYP")
    return normalize_text(" ".join(words) + hyp)


def _image_name(root: etree._Element) -> str | None:
    for el in root.iter():
        if local(el.tag) == "fileName" and el.text and el.text.strip():
            return el.text.strip()
    return None


def read_alto_file(
    xml_path: str | Path,
    problems: Problems | None = None,
    split: str | None = None,
    dataset_root: Path | None = None,
) -> list[LineSample]:
    """Read the text lines of one ALTO file (v2-v4), in document order.

    Raises:
        DataError: for malformed XML, a non-ALTO file or a missing image.
    """
    xml_path = Path(xml_path)
    problems = problems if problems is not None else Problems()
    root = parse_xml(xml_path)
    if local(root.tag) != "alto":
        raise DataError(f"{xml_path} is not ALTO (root element <{local(root.tag)}>, expected <alto>)")
    name = _image_name(root)
    same_stem = [xml_path.with_suffix(s) for s in (".jpg", ".png", ".tif", ".jpeg", ".tiff")]
    image_path = page_image(xml_path, name or "", dataset_root, same_stem)
    doc_id = xml_path.stem
    samples: list[LineSample] = []
    lines = [el for el in root.iter() if local(el.tag) == "TextLine"]
    for i, line in enumerate(lines):
        lid = line.get("ID") or f"line{i}"
        source = f"{xml_path} line {lid}"
        poly = None
        box = None
        for shape in line:
            if local(shape.tag) == "Shape":
                for p in shape:
                    if local(p.tag) == "Polygon" and p.get("POINTS"):
                        try:
                            poly = parse_points(p.get("POINTS", ""), source)
                        except DataError as exc:
                            problems.report(str(exc))
        if poly is None:
            try:
                values = " ".join(line.get(k, "") for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
                box = tuple(int(v) for v in parse_points(values, source).reshape(-1))
            except DataError:
                problems.report(
                    f"{source}: TextLine has neither Shape/Polygon nor numeric HPOS/VPOS/WIDTH/HEIGHT"
                )
                continue
        samples.append(
            LineSample(
                id=f"{doc_id}/{lid}",
                text=line_text(line),
                image_path=image_path,
                doc_id=doc_id,
                split=split,
                polygon=poly,
                box=box,  # type: ignore[arg-type]
                baseline=_baseline(line, poly, box, problems, source),
            )
        )
    set_line_spacing(samples)
    return samples


def _baseline(
    line: etree._Element,
    poly: np.ndarray | None,
    box: tuple[int, ...] | None,
    problems: Problems,
    source: str,
) -> np.ndarray | None:
    """ALTO 4 ``BASELINE="x1,y1 x2,y2 ..."`` as points; ALTO 2/3's single number (a height on the page) as a
    level baseline across the line's outline or box."""
    raw = (line.get("BASELINE") or "").strip()
    if not raw:
        return None
    try:
        if len(raw.replace(",", " ").split()) == 1:
            if poly is not None:
                x0, x1 = int(poly[:, 0].min()), int(poly[:, 0].max())
            elif box is not None:
                x0, x1 = box[0], box[0] + box[2]
            else:
                return None
            return parse_points(f"{x0} {raw} {x1} {raw}", f"{source} BASELINE")
        return parse_points(raw, f"{source} BASELINE")
    except (DataError, ValueError) as exc:
        problems.report(f"{source}: bad BASELINE {raw[:40]!r}: {exc}")
        return None
