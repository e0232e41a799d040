"""ONNX export of CTC models with dynamic batch size and width.

The exported graph keeps variable-length semantics: the LSTM gets per-line sequence lengths and attention gets
its padding mask from the widths input, so padded batches give the same results as PyTorch.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from htrlab.errors import ModelError
from htrlab.models.base import Recognizer, is_seq2seq
from htrlab.models.checkpoint import META_KEY, LoadedModel


class _Export(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.model(images, widths)
        return out


def export_onnx(loaded: LoadedModel, out: str | Path, opset: int = 17) -> Path:
    """Write ``loaded``'s model as ONNX (inputs ``images`` (N, 1, H, W) float32 and ``widths`` (N,) int64;
    outputs ``log_probs`` (N, T, C) and ``lengths`` (N,)), with the checkpoint's metadata embedded."""
    import onnx

    if is_seq2seq(loaded.model):
        raise ModelError(f"ONNX export covers CTC models; '{loaded.meta.model_name}' is autoregressive")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = loaded.model
    if (
        isinstance(model, Recognizer) and model.own_onnx_graph
    ):  # its torch form does not export: its own graph
        proto = model.onnx_graph()
        onnx.save(proto, str(out))
        return _with_metadata(loaded, out)
    wrapper = _Export(loaded.model).eval()  # eval() on the wrapper: export restores the wrapper's mode after
    h = loaded.preprocess.height
    example = (torch.rand(2, 1, h, 256), torch.tensor([256, 200]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # the exporter warns about LSTM batch sizes; lengths are inputs here
            torch.onnx.export(
                wrapper,
                example,
                str(out),
                input_names=["images", "widths"],
                output_names=["log_probs", "lengths"],
                opset_version=opset,
                dynamo=False,
                dynamic_axes={
                    "images": {0: "batch", 3: "width"},
                    "widths": {0: "batch"},
                    "log_probs": {0: "batch", 1: "frames"},
                    "lengths": {0: "batch"},
                },
            )
    except Exception as exc:  # the exporter raises many types; name the model and the cause
        raise ModelError(f"ONNX export of model '{loaded.meta.model_name}' failed: {exc}") from exc
    return _with_metadata(loaded, out)


def _with_metadata(loaded: LoadedModel, out: Path) -> Path:
    """Fold affine operations into convolutions, the shifts left as convolutions (exact; see ``onnx_fold``), and
    embed htrlab's metadata."""
    import onnx

    from htrlab.models.onnx_fold import fold_affine_into_conv, shifts_as_depthwise_conv

    proto = onnx.load(str(out))
    fold_affine_into_conv(proto)
    shifts_as_depthwise_conv(proto)
    params = sum(p.numel() for p in loaded.model.parameters())
    for key, value in ((META_KEY, json.dumps(asdict(loaded.meta))), ("htrlab_params", str(params))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out
