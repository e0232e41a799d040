"""Robustness benchmark: CER/WER of a checkpoint on the same lines under each damage operation and severity,
for each decoder. Every line is damaged once per (operation, severity) and the damaged images are shared by all
decoders, so decoders are compared on identical input."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from htrlab.data.preprocess import preprocess
from htrlab.degrade import apply_op, list_ops
from htrlab.errors import ConfigError
from htrlab.models.checkpoint import LoadedModel
from htrlab.read.predict import decode_emissions, emissions
from htrlab.text.metrics import count_errors


@dataclass
class RobustnessRow:
    op: str
    severity: int
    decoder: str
    lines: int
    cer: float
    wer: float
    cer_reduction_vs_greedy: float | None = None  # relative, for decoders other than greedy


def run_robustness(
    loaded: LoadedModel | Any,
    grays: Sequence[np.ndarray],
    refs: Sequence[str],
    ops: Sequence[str],
    severities: Sequence[int],
    decoders: Sequence[str] | Mapping[str, Any] = ("greedy",),
    seed: int = 0,
    batch_size: int = 32,
) -> list[RobustnessRow]:
    """All (operation, severity, decoder) cells, plus the undamaged baseline (op ``none``, severity 0).

    ``loaded`` is a :class:`LoadedModel` or an engine (:func:`htrlab.read.engines.load_engine`, e.g. the
    bundled ONNX model). ``decoders`` are names (``greedy``, ``beam``) or a mapping name -> decoder (``None`` = greedy, or a
    :class:`htrlab.decoding.beam.BeamDecoder`, e.g. with an LM for ``beam+lm``). The network runs once per
    condition; every decoder reads the same outputs.
    """
    if not isinstance(decoders, Mapping):
        unknown = [d for d in decoders if d not in ("greedy", "beam")]
        if unknown:
            raise ConfigError(
                f"decoders {unknown} need settings (an LM): pass a mapping name -> decoder; "
                f"by name: greedy, beam"
            )
        from htrlab.decoding.beam import BeamDecoder

        decoders = {d: (None if d == "greedy" else BeamDecoder(loaded.charset)) for d in decoders}
    bad_ops = [o for o in ops if o not in list_ops()]
    if bad_ops:
        raise ConfigError(f"unknown operations {bad_ops}; known: {', '.join(list_ops())}")
    net = loaded.model if isinstance(loaded, LoadedModel) else loaded
    rows: list[RobustnessRow] = []
    conditions = [("none", 0), *[(o, s) for o in ops for s in severities]]
    for k, (op, sev) in enumerate(conditions):
        if op == "none":
            damaged = list(grays)
        else:
            damaged = [apply_op(g, op, sev, np.random.default_rng([seed, k, i])) for i, g in enumerate(grays)]
        images = [preprocess(g, loaded.preprocess) for g in damaged]
        ems = emissions(net, images, batch_size)
        greedy_cer = None
        for name, dec in decoders.items():
            hyps = [d.text for d in decode_emissions(ems, loaded.charset, dec)]
            c = count_errors(refs, hyps)
            if name == "greedy":
                greedy_cer = c.cer
            red = (greedy_cer - c.cer) / greedy_cer if name != "greedy" and greedy_cer else None
            rows.append(RobustnessRow(op, sev, name, len(refs), c.cer, c.wer, red))
    return rows


def write_outputs(rows: Sequence[RobustnessRow], out_dir: str | Path) -> dict[str, Path]:
    """``robustness.csv``, ``robustness.md`` and ``robustness.png`` (CER against severity, a panel per operation)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "robustness.csv", "md": out / "robustness.md", "png": out / "robustness.png"}
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    decoders = list(dict.fromkeys(r.decoder for r in rows))
    ops = list(dict.fromkeys(r.op for r in rows if r.op != "none"))
    sevs = sorted({r.severity for r in rows if r.op != "none"})
    cell = {(r.op, r.severity, r.decoder): r for r in rows}
    md = [
        "| operation | decoder | clean CER % | " + " | ".join(f"severity {s} CER %" for s in sevs) + " |",
        "|---|---|---:|" + "---:|" * len(sevs),
    ]
    for op in ops:
        for d in decoders:
            clean = cell.get(("none", 0, d))
            vals = [f"{100 * clean.cer:.2f}" if clean else "-"]
            for s in sevs:
                found = cell.get((op, s, d))
                txt = f"{100 * found.cer:.2f}" if found else "-"
                if found and found.cer_reduction_vs_greedy is not None:
                    txt += f" ({-100 * found.cer_reduction_vs_greedy:+.0f} %)"
                vals.append(txt)
            md.append(f"| {op} | {d} | " + " | ".join(vals) + " |")
    if len(decoders) > 1:  # the bracketed changes exist only beside greedy decoding
        md.append("")
        md.append(
            "In brackets: the relative change of CER against greedy decoding on the same images (negative: the"
        )
        md.append("decoder lowers CER).")
    paths["md"].write_text("\n".join(md) + "\n", encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(4, max(1, len(ops)))
    nrows = max(1, int(np.ceil(len(ops) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False, sharey=True)
    for ax, op in zip(axes.ravel(), ops):
        for d in decoders:
            xs = [0, *sevs]
            ys = [
                100 * cell[(op if s else "none", s, d)].cer for s in xs if (op if s else "none", s, d) in cell
            ]
            ax.plot(xs[: len(ys)], ys, "o-", label=d)
        ax.set_title(op, fontsize=9)
        ax.set_xlabel("severity")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(ops) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("CER %")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=90)
    plt.close(fig)
    return paths
