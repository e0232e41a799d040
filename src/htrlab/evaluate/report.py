"""Error reports people read: one row per line (with its image and the differences highlighted), and a
summary of what goes wrong (edit operations, character confusions, error classes, CER by line length and by
confidence decile, the worst lines), as CSV, self-contained HTML or Excel."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rapidfuzz.distance import Levenshtein

from htrlab.data.preprocess import to_display
from htrlab.errors import ConfigError
from htrlab.evaluate.evaluator import SplitResult

FORMATS = (".csv", ".html", ".xlsx")
CLASSES = ("lowercase", "capitals", "digits", "punctuation", "spaces", "other")


def char_class(c: str) -> str:
    """The error class of a character."""
    if c == " ":
        return "spaces"
    if c.isdigit():
        return "digits"
    if c.isalpha():
        return "capitals" if c.isupper() else "lowercase"
    if unicodedata.category(c).startswith(("P", "S")):
        return "punctuation"
    return "other"


@dataclass
class LineRow:
    split: str
    id: str
    ref: str
    hyp: str
    confidence: float
    char_errors: int
    word_errors: int
    words: int
    image: np.ndarray | None = field(default=None, repr=False)

    @property
    def cer(self) -> float:
        return self.char_errors / len(self.ref) if self.ref else float(bool(self.hyp))

    @property
    def wer(self) -> float:
        return self.word_errors / self.words if self.words else float(bool(self.hyp.split()))


def segments(ref: str, hyp: str) -> list[tuple[str, str, str]]:
    """Aligned pieces ``(op, ref_part, hyp_part)`` with op in equal/replace/delete/insert."""
    return [
        (op.tag, ref[op.src_start : op.src_end], hyp[op.dest_start : op.dest_end])
        for op in Levenshtein.opcodes(ref, hyp)
    ]


@dataclass
class Summary:
    """What a report's summary shows, per split and overall."""

    splits: list[dict[str, Any]]
    ops: dict[str, int]
    confusions: list[tuple[str, str, int]]  # (reference char, hypothesis char, count); "" = nothing
    classes: dict[str, dict[str, float]]
    by_length: list[dict[str, Any]]
    by_confidence: list[dict[str, Any]]
    worst: list[LineRow]


def summarise(rows: Sequence[LineRow], top: int = 30, worst: int = 50) -> Summary:
    ops: Counter[str] = Counter()
    conf: Counter[tuple[str, str]] = Counter()
    ref_class: Counter[str] = Counter()
    err_class: Counter[str] = Counter()
    for r in rows:
        for c in r.ref:
            ref_class[char_class(c)] += 1
        for op in Levenshtein.editops(r.ref, r.hyp):
            ops[op.tag] += 1
            if op.tag == "replace":
                a, b = r.ref[op.src_pos], r.hyp[op.dest_pos]
            elif op.tag == "delete":
                a, b = r.ref[op.src_pos], ""
            else:
                a, b = "", r.hyp[op.dest_pos]
            conf[(a, b)] += 1
            err_class[char_class(a or b)] += 1
    splits = []
    for name in dict.fromkeys(r.split for r in rows):
        sub = [r for r in rows if r.split == name]
        chars = sum(len(r.ref) for r in sub)
        words = sum(r.words for r in sub)
        splits.append(
            {
                "split": name,
                "lines": len(sub),
                "cer": sum(r.char_errors for r in sub) / chars if chars else 0.0,
                "wer": sum(r.word_errors for r in sub) / words if words else 0.0,
                "mean_confidence": float(np.mean([r.confidence for r in sub])) if sub else 0.0,
            }
        )
    classes = {
        c: {
            "reference_chars": ref_class[c],
            "errors": err_class[c],
            "error_rate": err_class[c] / ref_class[c] if ref_class[c] else float("nan"),
        }
        for c in CLASSES
        if ref_class[c] or err_class[c]
    }
    by_length = []
    for lo, hi in ((0, 10), (10, 20), (20, 30), (30, 40), (40, 10_000)):
        sub = [r for r in rows if lo <= len(r.ref) < hi]
        chars = sum(len(r.ref) for r in sub)
        if sub:
            by_length.append(
                {
                    "chars": f"{lo}-{hi - 1}" if hi < 10_000 else f"{lo}+",
                    "lines": len(sub),
                    "cer": sum(r.char_errors for r in sub) / chars if chars else 0.0,
                }
            )
    by_confidence = []
    if rows:
        order = np.argsort([r.confidence for r in rows], kind="stable")
        for d, idx in enumerate(np.array_split(order, min(10, len(rows)))):
            sub = [rows[i] for i in idx]
            chars = sum(len(r.ref) for r in sub)
            by_confidence.append(
                {
                    "decile": d + 1,
                    "lines": len(sub),
                    "confidence": f"{sub[0].confidence:.3f}-{sub[-1].confidence:.3f}",
                    "mean_confidence": float(np.mean([r.confidence for r in sub])),
                    "cer": sum(r.char_errors for r in sub) / chars if chars else 0.0,
                }
            )
    worst_rows = sorted((r for r in rows if r.ref), key=lambda r: (-r.cer, -len(r.ref)))[:worst]
    confusions = [(a, b, n) for (a, b), n in conf.most_common(top)]
    return Summary(
        splits,
        {k: ops[k] for k in ("replace", "delete", "insert")},
        confusions,
        classes,
        by_length,
        by_confidence,
        worst_rows,
    )


def rows_from_results(results: Sequence[SplitResult]) -> list[LineRow]:
    rows = []
    for res in results:
        images: list[np.ndarray | None] = list(res.images) or [None] * len(res.predictions)
        for p, im in zip(res.predictions, images):
            ref, hyp = p["ref"], p["hyp"]
            rows.append(
                LineRow(
                    res.split,
                    p["id"],
                    ref,
                    hyp,
                    float(p["confidence"]),
                    Levenshtein.distance(ref, hyp),
                    Levenshtein.distance(ref.split(), hyp.split()),
                    len(ref.split()),
                    im,
                )
            )
    return rows


def _png(im: np.ndarray | None, max_width: int = 600) -> bytes:
    if im is None:
        return b""
    pil = Image.fromarray(to_display(im.astype(np.float32) / 255.0 if im.dtype == np.uint8 else im))
    if pil.width > max_width:
        pil = pil.resize((max_width, max(1, round(pil.height * max_width / pil.width))))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def confusion_png(summary: Summary, size: int = 15) -> bytes:
    """A heat map of the most frequent reference -> hypothesis character confusions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def show(c: str) -> str:
        return "∅" if c == "" else ("␣" if c == " " else c)

    refs = list(dict.fromkeys(a for a, _, _ in summary.confusions))[:size]
    hyps = list(dict.fromkeys(b for _, b, _ in summary.confusions))[:size]
    mat = np.zeros((len(refs), len(hyps)))
    for a, b, n in summary.confusions:
        if a in refs and b in hyps:
            mat[refs.index(a), hyps.index(b)] = n
    fig, ax = plt.subplots(figsize=(1 + 0.45 * max(len(hyps), 4), 1 + 0.45 * max(len(refs), 4)))
    ax.imshow(mat, cmap="Reds")
    ax.set_xticks(range(len(hyps)), [show(c) for c in hyps])
    ax.set_yticks(range(len(refs)), [show(c) for c in refs])
    ax.set_xlabel("recognised as")
    ax.set_ylabel("reference")
    for i in range(len(refs)):
        for j in range(len(hyps)):
            if mat[i, j]:
                colour = "white" if mat[i, j] > mat.max() / 2 else "black"
                ax.text(j, i, str(int(mat[i, j])), ha="center", va="center", fontsize=7, color=colour)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------- writers


def write_csv(rows: Sequence[LineRow], summary: Summary, path: Path) -> None:
    """One row per line; the summary goes beside it as ``<name>.summary.json``."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "id", "reference", "hypothesis", "cer", "wer", "confidence", "length"])
        for r in rows:
            w.writerow(
                [
                    r.split,
                    r.id,
                    r.ref,
                    r.hyp,
                    f"{r.cer:.4f}",
                    f"{r.wer:.4f}",
                    f"{r.confidence:.4f}",
                    len(r.ref),
                ]
            )
    side = {k: v for k, v in summary.__dict__.items() if k != "worst"}
    side["worst"] = [
        {"split": r.split, "id": r.id, "ref": r.ref, "hyp": r.hyp, "cer": r.cer} for r in summary.worst
    ]
    path.with_suffix(".summary.json").write_text(
        json.dumps(side, indent=2, ensure_ascii=False), encoding="utf-8"
    )


def _diff_html(ref: str, hyp: str) -> tuple[str, str]:
    r_out, h_out = [], []
    for tag, a, b in segments(ref, hyp):
        a, b = html.escape(a), html.escape(b)
        if tag == "equal":
            r_out.append(a)
            h_out.append(b)
        elif tag == "replace":
            r_out.append(f'<span class="sub">{a}</span>')
            h_out.append(f'<span class="sub">{b}</span>')
        elif tag == "delete":
            r_out.append(f'<span class="del">{a}</span>')
        else:
            h_out.append(f'<span class="ins">{b}</span>')
    return "".join(r_out), "".join(h_out)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
            for v in r.values()
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _line_rows_html(rows: Sequence[LineRow]) -> str:
    out = []
    for r in rows:
        ref, hyp = _diff_html(r.ref, r.hyp)
        img = _png(r.image)
        img_tag = (
            f'<img alt="{html.escape(r.id)}" src="data:image/png;base64,{base64.b64encode(img).decode()}">'
            if img
            else ""
        )
        out.append(
            f"<tr><td>{html.escape(r.split)}</td><td>{html.escape(r.id)}</td><td>{img_tag}<div class='ref'>"
            f"{ref}</div><div class='hyp'>{hyp}</div></td><td>{r.cer:.3f}</td><td>{r.wer:.3f}</td>"
            f"<td>{r.confidence:.3f}</td><td>{len(r.ref)}</td></tr>"
        )
    return (
        "<table class='lines'><tr><th>split</th><th>id</th><th>image / reference / hypothesis</th><th>CER</th>"
        "<th>WER</th><th>confidence</th><th>length</th></tr>" + "".join(out) + "</table>"
    )


CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;font-size:13px}th{background:#f0f0f0}
.ref,.hyp{font-family:monospace;white-space:pre-wrap}.ref:before{content:'ref: ';color:#888}
.hyp:before{content:'hyp: ';color:#888}.sub{background:#ffd27f}.del{background:#ff9c9c;text-decoration:line-through}
.ins{background:#9fe29f}img{display:block;max-width:600px}"""


def write_html(
    rows: Sequence[LineRow], summary: Summary, path: Path, title: str = "htrlab error report"
) -> None:
    """A single self-contained HTML file (images inline as data URIs; no network needed)."""
    conf_rows = [
        {"reference": a or "∅", "recognised as": b or "∅", "count": n} for a, b, n in summary.confusions
    ]
    classes = [{"class": k, **v} for k, v in summary.classes.items()]
    conf_img = base64.b64encode(confusion_png(summary)).decode() if summary.confusions else ""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>",
        "<h2>Splits</h2>",
        _table(summary.splits),
        "<h2>Edit operations (characters)</h2>",
        _table(
            [
                {
                    "substitutions": summary.ops["replace"],
                    "deletions": summary.ops["delete"],
                    "insertions": summary.ops["insert"],
                }
            ]
        ),
        "<h2>Errors by character class</h2>",
        _table(classes),
        "<h2>Most frequent confusions</h2>",
        f"<img alt='confusion matrix' src='data:image/png;base64,{conf_img}'>" if conf_img else "",
        _table(conf_rows),
        "<h2>CER by line length</h2>",
        _table(summary.by_length),
        "<h2>CER by confidence decile (calibration)</h2>",
        _table(summary.by_confidence),
        f"<h2>The {len(summary.worst)} worst lines</h2>",
        _line_rows_html(summary.worst),
        "<h2>All lines</h2>",
        _line_rows_html(rows),
        "</body></html>",
    ]
    path.write_text("".join(parts), encoding="utf-8")


def write_xlsx(rows: Sequence[LineRow], summary: Summary, path: Path) -> None:
    """An Excel workbook: 'summary' (tables and the confusion image), 'lines' and 'worst' (thumbnails, rich-text
    differences: substitutions orange, deletions red struck through, insertions green)."""
    from openpyxl import Workbook
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont
    from openpyxl.drawing.image import Image as XLImage
    from openpyxl.styles import Font

    fonts = {
        "replace": InlineFont(color="D97700", b=True),
        "delete": InlineFont(color="CC0000", strike=True),
        "insert": InlineFont(color="008800", b=True),
    }

    def rich(ref: str, hyp: str, side: str) -> CellRichText | str:
        parts: list[str | TextBlock] = []
        for tag, a, b in segments(ref, hyp):
            text = a if side == "ref" else b
            if not text:
                continue
            parts.append(text if tag == "equal" else TextBlock(fonts[tag], text))
        return CellRichText(*parts) if parts else ""

    wb = Workbook()
    ws = wb.active
    ws.title = "summary"
    bold = Font(bold=True)

    def table(title: str, data: list[dict[str, Any]]) -> None:
        ws.append([title])
        ws.cell(ws.max_row, 1).font = bold
        if data:
            ws.append(list(data[0]))
            for r in data:
                ws.append([v if not isinstance(v, float) else round(v, 4) for v in r.values()])
        ws.append([])

    table("splits", summary.splits)
    table(
        "edit operations",
        [
            {
                "substitutions": summary.ops["replace"],
                "deletions": summary.ops["delete"],
                "insertions": summary.ops["insert"],
            }
        ],
    )
    table("errors by character class", [{"class": k, **v} for k, v in summary.classes.items()])
    table(
        "most frequent confusions",
        [{"reference": a or "∅", "recognised as": b or "∅", "count": n} for a, b, n in summary.confusions],
    )
    table("CER by line length", summary.by_length)
    table("CER by confidence decile", summary.by_confidence)
    if summary.confusions:
        ws.add_image(XLImage(io.BytesIO(confusion_png(summary))), "H2")

    def lines_sheet(name: str, data: Sequence[LineRow]) -> None:
        sh = wb.create_sheet(name)
        sh.append(["split", "id", "image", "reference", "hypothesis", "CER", "WER", "confidence", "length"])
        for c in sh[1]:
            c.font = bold
        sh.column_dimensions["C"].width = 60
        sh.column_dimensions["D"].width = 45
        sh.column_dimensions["E"].width = 45
        for i, r in enumerate(data, start=2):
            sh.append(
                [
                    r.split,
                    r.id,
                    "",
                    "",
                    "",
                    round(r.cer, 4),
                    round(r.wer, 4),
                    round(r.confidence, 4),
                    len(r.ref),
                ]
            )
            sh.cell(i, 4).value = rich(r.ref, r.hyp, "ref")
            sh.cell(i, 5).value = rich(r.ref, r.hyp, "hyp")
            png = _png(r.image, max_width=420)
            if png:
                img = XLImage(io.BytesIO(png))
                sh.add_image(img, f"C{i}")
                sh.row_dimensions[i].height = max(15, img.height * 0.75 + 2)

    lines_sheet("worst", summary.worst)
    lines_sheet("lines", rows)
    wb.save(path)


def write_report(results: Sequence[SplitResult], path: str | Path) -> Path:
    """Write an error report; the format follows the file's extension (.csv, .html, .xlsx)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"report {path}: unknown format '{path.suffix}' (use one of {', '.join(FORMATS)})")
    rows = rows_from_results(results)
    summary = summarise(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    {".csv": write_csv, ".html": write_html, ".xlsx": write_xlsx}[path.suffix.lower()](rows, summary, path)
    return path
