"""``vit-ctc``: a vision transformer encoder over the line with a linear CTC head (non-autoregressive).

The same encoder family as TrOCR (ViT from scratch, or the encoder of a pretrained TrOCR checkpoint: DeiT, BEiT
or ViT), applied to lines at their own aspect ratio rather than squashed to a square: the line is stretched
2x horizontally, cut into 16 x 16 patches (position embeddings interpolated to the grid), and the patch
rows of each column are concatenated into one frame, so a line of width W gives W / 8 CTC frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from htrlab.errors import CheckpointError, ConfigError
from htrlab.models.base import Recognizer
from htrlab.models.layers import drop_pooler, vit_encoder
from htrlab.models.registry import register
from htrlab.models.trocr import SIZES


@dataclass
class ViTCTCConfig:
    size: str = "small"  # encoder preset as TrOCR's (small | base | large) when trained from scratch
    input_height: int = 64  # line height; a multiple of the patch size
    patch_size: int = 16
    stretch: int = 2  # horizontal stretch before patching: frames per pixel = stretch / patch_size
    encoder_hidden: int = 0
    encoder_layers: int = 0
    encoder_heads: int = 0
    encoder_mlp: int = 0
    dropout: float = 0.1
    # a pretrained VisionEncoderDecoder (TrOCR) checkpoint whose encoder starts this model; its encoder config
    # is copied into encoder_config so checkpoints load without it
    pretrained: str = ""
    encoder_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"model.size must be one of {', '.join(SIZES)}, got {self.size!r}")
        for name, value in zip(
            ("encoder_hidden", "encoder_layers", "encoder_heads", "encoder_mlp"), SIZES[self.size]
        ):
            if getattr(self, name) == 0:
                setattr(self, name, value)
        if self.input_height % self.patch_size:
            raise ConfigError(f"model.input_height {self.input_height} must be a multiple of patch_size")


class ViTCTC(Recognizer):
    """(N, 1, H, W) images (ink = 1) + (N,) widths -> (N, T, C) log-probabilities, T = W * stretch / patch.

    The encoder has no padding mask; htrlab batches lines of similar width, which keeps padding small.
    """

    supports_padding = False

    def __init__(self, cfg: ViTCTCConfig, num_classes: int):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        self.cfg = cfg
        if cfg.pretrained and not cfg.encoder_config:
            from transformers import VisionEncoderDecoderModel

            try:
                encoder = VisionEncoderDecoderModel.from_pretrained(cfg.pretrained).encoder
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"cannot load the encoder of '{cfg.pretrained}': {exc}") from exc
            cfg.encoder_config = encoder.config.to_dict()
            self.encoder = encoder
        elif cfg.encoder_config:
            conf = dict(cfg.encoder_config)
            self.encoder = AutoModel.from_config(AutoConfig.for_model(conf.pop("model_type"), **conf))
        else:
            # a square position grid (as TrOCR's), interpolated to each line's patch grid
            self.encoder = vit_encoder(
                384,
                cfg.patch_size,
                cfg.encoder_hidden,
                cfg.encoder_layers,
                cfg.encoder_heads,
                cfg.encoder_mlp,
                cfg.dropout,
            )
        drop_pooler(self.encoder)
        enc: Any = self.encoder.config
        self.patch = int(enc.patch_size if isinstance(enc.patch_size, int) else enc.patch_size[0])
        if cfg.input_height % self.patch:
            raise ConfigError(
                f"model.input_height {cfg.input_height} is not a multiple of the patch size {self.patch}"
            )
        self.rows = cfg.input_height // self.patch
        self.head = nn.Linear(self.rows * int(enc.hidden_size), num_classes)
        self.drop = nn.Dropout(cfg.dropout)

    def output_length(self, width: torch.Tensor | int) -> torch.Tensor | int:
        return width * self.cfg.stretch // self.patch

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != self.cfg.input_height:
            raise ValueError(
                f"vit-ctc expects (N, 1, {self.cfg.input_height}, W) images, got {tuple(images.shape)}"
            )
        x = (1.0 - 2.0 * images).expand(-1, 3, -1, -1)  # dark ink on light paper in [-1, 1], as TrOCR
        x = F.interpolate(
            x, scale_factor=(1.0, float(self.cfg.stretch)), mode="bilinear", align_corners=False
        )
        cols = x.shape[3] // self.patch
        x = x[:, :, :, : cols * self.patch]
        out: Any = self.encoder(pixel_values=x, interpolate_pos_encoding=True)
        h = out.last_hidden_state  # (N, special + rows * cols, D)
        h = h[:, h.shape[1] - self.rows * cols :]  # drop the class (and distillation) tokens
        n, _, d = h.shape
        h = (
            h.reshape(n, self.rows, cols, d).permute(0, 2, 1, 3).reshape(n, cols, self.rows * d)
        )  # (N, T, rows*D)
        lengths = torch.clamp(torch.as_tensor(self.output_length(widths)), min=1, max=cols).to(torch.long)
        return self.head(self.drop(h)).log_softmax(-1), lengths


register(
    "vit-ctc",
    ViTCTCConfig,
    ViTCTC,
    tiny={
        "input_height": 32,
        "patch_size": 8,
        "encoder_hidden": 32,
        "encoder_layers": 2,
        "encoder_heads": 2,
        "encoder_mlp": 64,
    },
)
