"""``htrlab export CHECKPOINT -o model.onnx``: ONNX export (dynamic batch and width), checked against PyTorch."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a CTC checkpoint to ONNX (run it with recognize --engine onnx)")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--no-check", action="store_true", help="skip comparing onnxruntime's outputs with PyTorch's"
    )
    p.set_defaults(func=run)


def max_difference(checkpoint: str, onnx_path: str, seed: int = 0) -> float:
    """Largest absolute log-probability difference between PyTorch and onnxruntime on a padded random batch."""
    import torch

    from htrlab.read.engines import onnx_engine, torch_engine

    pt, ox = torch_engine(checkpoint), onnx_engine(onnx_path)
    g = torch.Generator().manual_seed(seed)
    h = pt.preprocess.height
    widths = torch.tensor([320, 211, 97])
    images = torch.zeros(3, 1, h, 320)
    for i, w in enumerate(widths.tolist()):
        images[i, :, :, :w] = torch.rand(1, h, w, generator=g)
    a, la = pt(images, widths)
    b, lb = ox(images, widths)
    if not torch.equal(la, lb):
        return float("inf")
    return max(float((a[i, :n] - b[i, :n]).abs().max()) for i, n in enumerate(la.tolist()))


def run(args: argparse.Namespace) -> int:
    from htrlab.errors import ModelError
    from htrlab.models.checkpoint import load_checkpoint
    from htrlab.models.onnx_export import export_onnx

    out = export_onnx(load_checkpoint(args.checkpoint), args.output, args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    if not args.no_check:
        diff = max_difference(args.checkpoint, str(out))
        print(f"check: max |log-prob difference| PyTorch vs onnxruntime = {diff:.2e}", file=sys.stderr)
        if diff > 1e-3:
            raise ModelError(f"ONNX export {out} disagrees with PyTorch (max difference {diff:.3g})")
    return 0
