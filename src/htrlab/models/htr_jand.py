"""HTR-JAND: gated-convolution CNN -> BiLSTM -> multi-head self-attention -> CTC.

Five blocks of [FullGatedConv2d -> BatchNorm -> ReLU -> Squeeze-Excitation -> MaxPool] turn a line image into
a feature sequence; a 4-layer BiLSTM models context; self-attention (residual + LayerNorm) adds long-range
mixing; a linear layer gives per-frame character log-probabilities trained with CTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from htrlab.errors import ConfigError
from htrlab.models.base import Recognizer
from htrlab.models.layers import (
    FullGatedConv2d,
    SinusoidalPositionalEncoding,
    SqueezeExcitation,
    pooled_length,
)
from htrlab.models.registry import register


@dataclass
class HTRJandConfig:
    """Sizes of HTR-JAND. Defaults are the teacher described in the paper."""

    input_height: int = 64  # must equal preprocess.height
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128, 256])  # per conv block
    pools: list[list[int]] = field(default_factory=lambda: [[2, 2], [2, 2], [2, 2], [2, 1], [1, 1]])  # (h, w)
    se_reduction: int = 8  # squeeze-excitation bottleneck ratio
    d_model: int = 256  # width of the sequence model
    lstm_hidden: int = 128  # per direction
    lstm_layers: int = 4
    dropout: float = 0.2  # between LSTM layers and before the classifier
    attn_heads: int = 2

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.pools):
            raise ConfigError(
                f"model: {len(self.channels)} channels but {len(self.pools)} pools; give one per block"
            )
        if any(len(p) != 2 or min(p) < 1 for p in self.pools):
            raise ConfigError(f"model.pools must be [h, w] pairs of positive ints, got {self.pools}")
        hdiv = 1
        for ph, _ in self.pools:
            hdiv *= ph
        if self.input_height % hdiv:
            raise ConfigError(
                f"model.input_height {self.input_height} is not divisible by the pooling ({hdiv})"
            )
        if self.d_model % self.attn_heads or (2 * self.lstm_hidden) % self.attn_heads:
            raise ConfigError("model: d_model and 2*lstm_hidden must be divisible by attn_heads")


class HTRJand(Recognizer):
    """(N, 1, H, W) images + (N,) widths -> (N, T, C) log-probabilities + (N,) output lengths, T = W / 8."""

    def __init__(self, cfg: HTRJandConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out, (ph, pw) in zip(cfg.channels, cfg.pools):
            layers: list[nn.Module] = [
                FullGatedConv2d(c_in, c_out),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                SqueezeExcitation(c_out, cfg.se_reduction),
            ]
            if ph > 1 or pw > 1:
                layers.append(nn.MaxPool2d((ph, pw)))
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        self._pools = [(p[0], p[1]) for p in cfg.pools]
        hdiv = 1
        for ph, _ in self._pools:
            hdiv *= ph
        self.proj = nn.Linear(cfg.channels[-1] * (cfg.input_height // hdiv), cfg.d_model)
        self.pos = SinusoidalPositionalEncoding(cfg.d_model)
        self.lstm = nn.LSTM(
            cfg.d_model,
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            bidirectional=True,
            batch_first=True,
            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
        )
        d_seq = 2 * cfg.lstm_hidden
        self.attn = nn.MultiheadAttention(d_seq, cfg.attn_heads, dropout=0.1, batch_first=True)
        self.norm = nn.LayerNorm(d_seq)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d_seq, num_classes)

    def output_length(self, width: torch.Tensor | int) -> torch.Tensor | int:
        """Number of CTC frames for an input of ``width`` pixels."""
        return pooled_length(width, self._pools)

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != self.cfg.input_height:
            raise ValueError(
                f"HTR-JAND expects (N, 1, {self.cfg.input_height}, W) images, got {tuple(images.shape)}"
            )
        f = self.cnn(images)  # (N, 1, H, W) -> (N, C, H/16, W/8)
        n, c, h, t = f.shape
        seq = f.permute(0, 3, 1, 2).reshape(n, t, c * h)  # (N, T, C*H')
        seq = self.pos(self.proj(seq))  # (N, T, D)
        lengths = torch.clamp(torch.as_tensor(self.output_length(widths)), min=1, max=t).to(torch.long)
        packed = pack_padded_sequence(seq, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=t)  # (N, T, 2*hidden)
        mask = torch.arange(t, device=out.device)[None, :] >= lengths.to(out.device)[:, None]  # True = pad
        att, _ = self.attn(out, out, out, key_padding_mask=mask, need_weights=False)
        out = self.norm(out + att)
        logits = self.head(self.drop(out))  # (N, T, C)
        return logits.log_softmax(-1), lengths


register(
    "htr-jand",
    HTRJandConfig,
    HTRJand,
    tiny={
        "channels": [8, 16, 16, 16, 32],
        "pools": [[2, 2], [2, 2], [2, 1], [2, 1], [1, 1]],
        "d_model": 48,
        "lstm_hidden": 32,
        "lstm_layers": 1,
        "input_height": 32,
    },
)


@dataclass
class HTRJandStudentConfig(HTRJandConfig):
    """About half the teacher's parameters (1.6 M vs 3.2 M), same input and frame rate, so a teacher's frame
    posteriors can be distilled into it frame by frame (``htrlab train --distill-from TEACHER``)."""

    channels: list[int] = field(default_factory=lambda: [24, 48, 96, 96, 192])
    d_model: int = 192
    lstm_hidden: int = 96
    lstm_layers: int = 3


register(
    "htr-jand-student",
    HTRJandStudentConfig,
    HTRJand,
    tiny={
        "channels": [4, 8, 8, 8, 16],
        "pools": [[2, 2], [2, 2], [2, 1], [2, 1], [1, 1]],
        "d_model": 24,
        "lstm_hidden": 16,
        "lstm_layers": 1,
        "input_height": 32,
    },
)
