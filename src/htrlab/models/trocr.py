"""TrOCR-style vision encoder-decoder (Li et al., 2021) on Hugging Face ``transformers``: a ViT encoder over
the line squashed to a square image, and a TrOCR transformer decoder generating characters autoregressively.

Models trained here use a character tokenizer built from htrlab's charset: token 0 = padding, 1 = start of
sequence (the decoder's start token), 2 = end of sequence, charset index i -> token i + 2. Training feeds the
labels followed by exactly one end token; generation starts from the start token once (no double start).
Decoding is batched greedy or beam search (``model.params.num_beams``) with a maximum length and early stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from htrlab.errors import ConfigError
from htrlab.models.registry import register

PAD, BOS, EOS, OFFSET = 0, 1, 2, 2

# (encoder hidden, layers, heads, MLP; decoder d_model, layers, heads, FFN), as in the TrOCR paper's models:
# small = DeiT-small encoder + MiniLM-sized decoder, base = BEiT-base + RoBERTa-large-sized decoder,
# large = BEiT-large + RoBERTa-large-sized decoder. With a character vocabulary instead of a 50k BPE one the
# parameter counts are lower than the paper's 62 M / 334 M / 558 M; `htrlab models` prints the real ones.
SIZES: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    "small": (384, 12, 6, 1536, 256, 6, 8, 1024),
    "base": (768, 12, 12, 3072, 1024, 12, 16, 4096),
    "large": (1024, 24, 16, 4096, 1024, 12, 16, 4096),
}


@dataclass
class TrOCRModelConfig:
    size: str = "small"  # small | base | large: fills the sizes below that are left at 0
    input_height: int = 384  # the square image side (preprocess.height with preprocess.resize=square)
    patch_size: int = 16
    encoder_hidden: int = 0
    encoder_layers: int = 0
    encoder_heads: int = 0
    encoder_mlp: int = 0
    decoder_hidden: int = 0
    decoder_layers: int = 0
    decoder_heads: int = 0
    decoder_ffn: int = 0
    dropout: float = 0.1
    max_length: int = 160  # longest generated line, in characters (+ end token)
    num_beams: int = 1  # 1 = greedy

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"model.size must be one of {', '.join(SIZES)}, got {self.size!r}")
        preset = SIZES[self.size]
        names = (
            "encoder_hidden",
            "encoder_layers",
            "encoder_heads",
            "encoder_mlp",
            "decoder_hidden",
            "decoder_layers",
            "decoder_heads",
            "decoder_ffn",
        )
        for name, value in zip(names, preset):
            if getattr(self, name) == 0:
                setattr(self, name, value)
        if self.input_height % self.patch_size:
            raise ConfigError(f"model.input_height {self.input_height} is not a multiple of patch_size")
        if self.encoder_hidden % self.encoder_heads or self.decoder_hidden % self.decoder_heads:
            raise ConfigError("model: hidden sizes must be divisible by their head counts")


class TrOCR(nn.Module):
    """(N, 1, S, S) squashed line images (ink = 1) -> character sequences."""

    seq2seq = True

    def __init__(self, cfg: TrOCRModelConfig, num_classes: int):
        super().__init__()
        from transformers import TrOCRConfig, TrOCRForCausalLM, VisionEncoderDecoderModel, ViTConfig, ViTModel

        self.cfg = cfg
        self.vocab = num_classes + OFFSET  # blank slot 0 of the charset becomes PAD; + BOS, EOS
        enc = ViTConfig(
            image_size=cfg.input_height,
            patch_size=cfg.patch_size,
            num_channels=3,
            hidden_size=cfg.encoder_hidden,
            num_hidden_layers=cfg.encoder_layers,
            num_attention_heads=cfg.encoder_heads,
            intermediate_size=cfg.encoder_mlp,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
        )
        dec = TrOCRConfig(
            vocab_size=self.vocab,
            d_model=cfg.decoder_hidden,
            decoder_layers=cfg.decoder_layers,
            decoder_attention_heads=cfg.decoder_heads,
            decoder_ffn_dim=cfg.decoder_ffn,
            max_position_embeddings=max(512, cfg.max_length + 2),
            dropout=cfg.dropout,
            pad_token_id=PAD,
            bos_token_id=BOS,
            eos_token_id=EOS,
            decoder_start_token_id=BOS,
            use_learned_position_embeddings=True,
            layernorm_embedding=True,
            cross_attention_hidden_size=cfg.encoder_hidden,
        )
        self.net = VisionEncoderDecoderModel(
            encoder=ViTModel(enc, add_pooling_layer=False), decoder=TrOCRForCausalLM(dec)
        )
        self.net.config.decoder_start_token_id = BOS
        self.net.config.pad_token_id = PAD
        self.net.config.eos_token_id = EOS

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        s = self.cfg.input_height
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != s or images.shape[3] != s:
            raise ValueError(
                f"TrOCR expects (N, 1, {s}, {s}) images (preprocess.resize=square), got {tuple(images.shape)}"
            )
        return (1.0 - 2.0 * images).expand(-1, 3, -1, -1)  # dark ink on light paper in [-1, 1]

    def labels(self, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        """CTC-style concatenated charset indices -> (N, L + 1) token labels ending in EOS, padded with -100."""
        n = len(target_lengths)
        longest = int(target_lengths.max()) if n else 0
        out = torch.full((n, longest + 1), -100, dtype=torch.long)
        start = 0
        for i, length in enumerate(target_lengths.tolist()):
            out[i, :length] = targets[start : start + length] + OFFSET
            out[i, length] = EOS
            start += length
        return out

    def forward(
        self, images: torch.Tensor, widths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Training loss (so that DistributedDataParallel sees the forward pass); see :meth:`loss`."""
        return self.loss(images, targets, target_lengths)

    def loss(self, images: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        """Token cross-entropy of the labels given the images (teacher forcing)."""
        labels = self.labels(targets, target_lengths).to(images.device)
        out: Any = self.net(pixel_values=self._pixels(images), labels=labels)
        loss: torch.Tensor = out.loss
        return loss

    @torch.no_grad()
    def generate(self, images: torch.Tensor) -> tuple[list[list[int]], list[float]]:
        """Decode a batch: charset indices per line (without BOS/EOS/PAD) and a confidence per line
        (geometric mean of the generated tokens' probabilities)."""
        net: Any = self.net  # transformers' generate() typing does not accept the encoder-decoder class
        out: Any = net.generate(
            pixel_values=self._pixels(images),
            max_length=self.cfg.max_length + 2,
            num_beams=self.cfg.num_beams,
            early_stopping=self.cfg.num_beams > 1,
            output_scores=True,
            return_dict_in_generate=True,
            bad_words_ids=[[PAD], [BOS]],
        )
        seqs = out.sequences[:, 1:]  # drop the start token
        scores = net.compute_transition_scores(
            out.sequences, out.scores, getattr(out, "beam_indices", None), normalize_logits=True
        )
        ids, confs = [], []
        for row, sc in zip(seqs.tolist(), scores):
            keep = []
            for tok in row:
                if tok == EOS:
                    break
                if tok >= OFFSET + 1:
                    keep.append(tok - OFFSET)
            keep = keep[: self.cfg.max_length]  # no end token generated: the line is cut at max_length
            n = min(len(keep) + 1, sc.shape[0])
            confs.append(float(sc[:n].mean().exp()) if n > 0 else 0.0)
            ids.append(keep)
        return ids, confs


@dataclass
class TrOCRSmallConfig(TrOCRModelConfig):
    size: str = "small"


@dataclass
class TrOCRBaseConfig(TrOCRModelConfig):
    size: str = "base"


@dataclass
class TrOCRLargeConfig(TrOCRModelConfig):
    size: str = "large"


_TINY = {
    "input_height": 32,
    "patch_size": 8,
    "encoder_hidden": 32,
    "encoder_layers": 2,
    "encoder_heads": 2,
    "encoder_mlp": 64,
    "decoder_hidden": 32,
    "decoder_layers": 2,
    "decoder_heads": 2,
    "decoder_ffn": 64,
    "max_length": 24,
}
for _size, _cls in (("small", TrOCRSmallConfig), ("base", TrOCRBaseConfig), ("large", TrOCRLargeConfig)):
    register(
        f"trocr-{_size}",
        _cls,
        TrOCR,
        tiny=dict(_TINY),
        description=f"TrOCR-{_size}-style ViT encoder + transformer decoder (autoregressive), character tokens",
    )
