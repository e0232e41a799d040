"""Building blocks shared by the architectures."""

from __future__ import annotations

import math

import torch
from torch import nn


class FullGatedConv2d(nn.Module):
    """A convolution with twice the output channels; one half gates the other through a sigmoid.

    (N, C_in, H, W) -> (N, C_out, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return a * torch.sigmoid(b)


class SqueezeExcitation(nn.Module):
    """Channel re-weighting from global average pooling (Hu et al., 2018). (N, C, H, W) -> same."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean(dim=(2, 3)))  # (N, C)
        return x * w[:, :, None, None]


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sine/cosine position code of Vaswani et al. (N, T, D) -> (N, T, D)."""

    def __init__(self, d_model: int, max_len: int = 4096):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
        self.pe: torch.Tensor
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.pe.shape[0]:
            # Extend on the fly for very long inputs rather than failing.
            self.pe = SinusoidalPositionalEncoding(x.shape[2], t * 2).pe.to(x.device)
        return x + self.pe[:t].to(x.dtype)


def pooled_length(width: torch.Tensor | int, pools: list[tuple[int, int]]) -> torch.Tensor | int:
    """Sequence length after a stack of max-pools (floor division per pool, as nn.MaxPool2d does)."""
    out = width
    for _, pw in pools:
        if pw > 1:
            out = out // pw
    return out


def vit_encoder(
    image_size: int, patch_size: int, hidden: int, layers: int, heads: int, mlp: int, dropout: float
) -> nn.Module:
    """A Hugging Face ViT encoder without its pooler (shared by the TrOCR and ViT-CTC models).

    (N, 3, H, W) pixels in [-1, 1] -> ``last_hidden_state`` (N, 1 + H/p * W/p, hidden).
    """
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=3,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=mlp,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return ViTModel(config, add_pooling_layer=False)


def drop_pooler(encoder: nn.Module) -> None:
    """Remove a pretrained encoder's pooler: unused by htrlab's heads, and parameters that never get gradients
    make DistributedDataParallel fail."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # type: ignore[assignment]
