"""TrOCR-style vision encoder-decoder (Li et al., 2021) on Hugging Face ``transformers``: a ViT encoder over
the line squashed to a square image, and a TrOCR transformer decoder generating characters autoregressively.

Models trained here use a character tokenizer built from htrlab's charset: token 0 = padding, 1 = start of
sequence (the decoder's start token), 2 = end of sequence, charset index i -> token i + 2. Training feeds the
labels followed by exactly one end token; generation starts from the start token once (no double start).
Decoding is batched greedy or beam search (``model.params.num_beams``) with a maximum length and early stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from htrlab.errors import CheckpointError, ConfigError
from htrlab.models.base import Recognizer
from htrlab.models.layers import drop_pooler, vit_encoder
from htrlab.models.registry import register
from htrlab.text.charset import Charset

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
    max_length: int = 160  # longest generated line, in tokens (+ end token)
    num_beams: int = 1  # 1 = greedy
    # A pretrained VisionEncoderDecoder checkpoint (local folder, or hub id when online), e.g.
    # microsoft/trocr-small-handwritten: its architecture, weights and own tokenizer replace the sizes above and
    # the character tokenizer. Its configuration and tokenizer are copied into hf_config / tokenizer_json, so
    # htrlab checkpoints made from it load without the original folder.
    pretrained: str = ""
    hf_config: dict[str, Any] = field(default_factory=dict)
    tokenizer_json: str = ""

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


class TrOCR(Recognizer):
    """(N, 1, S, S) squashed line images (ink = 1) -> character sequences."""

    seq2seq = True

    def __init__(self, cfg: TrOCRModelConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.tokenizer: Any = None  # a `tokenizers.Tokenizer` for pretrained checkpoints; None = characters
        if cfg.pretrained or cfg.hf_config:
            self._init_pretrained_checkpoint()
            return
        from transformers import TrOCRConfig, TrOCRForCausalLM, VisionEncoderDecoderModel

        self.vocab = num_classes + OFFSET  # blank slot 0 of the charset becomes PAD; + BOS, EOS
        self.pad, self.start, self.eos = PAD, BOS, EOS
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
        encoder = vit_encoder(
            cfg.input_height,
            cfg.patch_size,
            cfg.encoder_hidden,
            cfg.encoder_layers,
            cfg.encoder_heads,
            cfg.encoder_mlp,
            cfg.dropout,
        )
        self.net = VisionEncoderDecoderModel(encoder=encoder, decoder=TrOCRForCausalLM(dec))  # type: ignore[arg-type]
        self.net.config.decoder_start_token_id = BOS
        self.net.config.pad_token_id = PAD
        self.net.config.eos_token_id = EOS

    def _init_pretrained_checkpoint(self) -> None:
        """Architecture and tokenizer from a pretrained folder (first use) or from the copies in the config."""
        from tokenizers import Tokenizer
        from transformers import AutoTokenizer, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

        cfg = self.cfg
        if not cfg.hf_config:
            try:
                net = VisionEncoderDecoderModel.from_pretrained(cfg.pretrained)
                tok = AutoTokenizer.from_pretrained(cfg.pretrained)
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"cannot load pretrained TrOCR '{cfg.pretrained}': {exc}") from exc
            cfg.hf_config = net.config.to_dict()
            cfg.tokenizer_json = tok.backend_tokenizer.to_str()
            self.net = net
        else:
            self.net = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_dict(cfg.hf_config))
        drop_pooler(self.net.encoder)
        self.tokenizer = Tokenizer.from_str(cfg.tokenizer_json)
        conf: Any = self.net.config
        dec: Any = conf.decoder
        self.pad = int(conf.pad_token_id if conf.pad_token_id is not None else dec.pad_token_id)
        self.eos = int(conf.eos_token_id if conf.eos_token_id is not None else dec.eos_token_id)
        start = conf.decoder_start_token_id if conf.decoder_start_token_id is not None else dec.bos_token_id
        self.start = int(start)
        conf.pad_token_id, conf.eos_token_id, conf.decoder_start_token_id = self.pad, self.eos, self.start
        self.vocab = int(dec.vocab_size)
        enc: Any = conf.encoder
        cfg.input_height = int(enc.image_size if isinstance(enc.image_size, int) else enc.image_size[0])

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        s = self.cfg.input_height
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != s or images.shape[3] != s:
            raise ValueError(
                f"TrOCR expects (N, 1, {s}, {s}) images (preprocess.resize=square), got {tuple(images.shape)}"
            )
        return (1.0 - 2.0 * images).expand(-1, 3, -1, -1)  # dark ink on light paper in [-1, 1]

    def labels(
        self, targets: torch.Tensor, target_lengths: torch.Tensor, texts: list[str] | None = None
    ) -> torch.Tensor:
        """(N, L + 1) token labels: the line's tokens then exactly one end token, padded with -100.

        No start token: the model prepends ``decoder_start_token_id`` itself when it shifts the labels, so a
        start token here would be the classic doubled one. Character models take the charset indices
        (``targets``, concatenated as for CTC); pretrained checkpoints tokenize ``texts`` with their tokenizer.
        """
        if self.tokenizer is not None:
            if texts is None:
                raise ValueError("a pretrained TrOCR needs the texts to tokenize")
            rows = [
                self.tokenizer.encode(t, add_special_tokens=False).ids[: self.cfg.max_length] for t in texts
            ]
        else:
            rows, start = [], 0
            for length in target_lengths.tolist():
                rows.append((targets[start : start + length] + OFFSET).tolist())
                start += length
        longest = max((len(r) for r in rows), default=0)
        out = torch.full((len(rows), longest + 1), -100, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            out[i, len(r)] = self.eos
        return out

    def forward(
        self,
        images: torch.Tensor,
        widths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
        texts: list[str] | None = None,
    ) -> torch.Tensor:
        """Training loss (so that DistributedDataParallel sees the forward pass)."""
        labels = self.labels(targets, target_lengths, texts).to(images.device)
        out: Any = self.net(pixel_values=self._pixels(images), labels=labels)
        loss: torch.Tensor = out.loss
        return loss

    @torch.no_grad()
    def generate(
        self,
        images: torch.Tensor,
        charset: Charset,
        num_beams: int | None = None,
        logits_processor: Any = None,
    ) -> tuple[list[str], list[float]]:
        """Decode a batch: the text of each line and a confidence (geometric mean of the generated tokens'
        probabilities, end token included). Character models map tokens through ``charset``.
        ``num_beams`` overrides the configured beam width; ``logits_processor`` (a list) is applied at every
        step, e.g. :class:`htrlab.decoding.seq2seq_lm.CharLMFusion`."""
        from transformers import LogitsProcessorList

        beams = num_beams or self.cfg.num_beams
        net: Any = self.net  # transformers' generate() typing does not accept the encoder-decoder class
        out: Any = net.generate(
            pixel_values=self._pixels(images),
            max_length=self.cfg.max_length + 2,
            num_beams=beams,
            early_stopping=beams > 1,
            logits_processor=LogitsProcessorList(logits_processor or []),
            output_scores=True,
            return_dict_in_generate=True,
            decoder_start_token_id=self.start,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
            bad_words_ids=[[self.pad], [self.start]] if self.start != self.eos else [[self.pad]],
        )
        scores = net.compute_transition_scores(
            out.sequences, out.scores, getattr(out, "beam_indices", None), normalize_logits=True
        )
        texts, confs = [], []
        for row, sc in zip(out.sequences[:, 1:].tolist(), scores):  # drop the start token
            keep = []
            for tok in row:
                if tok == self.eos:
                    break
                if tok != self.pad:
                    keep.append(tok)
            keep = keep[: self.cfg.max_length]  # no end token generated: the line is cut at max_length
            n = min(len(keep) + 1, sc.shape[0])
            confs.append(float(sc[:n].mean().exp()) if n > 0 else 0.0)
            if self.tokenizer is not None:
                texts.append(self.tokenizer.decode(keep, skip_special_tokens=True))
            else:
                texts.append(charset.decode([t - OFFSET for t in keep if t > OFFSET]))
        return texts, confs

    def token_texts(self, charset: Charset) -> list[str]:
        """The text of every output token ("" for special tokens), for language models over characters."""
        net: Any = self.net
        size = int(net.config.decoder.vocab_size)
        if self.tokenizer is not None:
            return [self.tokenizer.decode([i], skip_special_tokens=True) for i in range(size)]
        return ["" if i <= OFFSET else charset.decode([i - OFFSET]) for i in range(size)]


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
    register(f"trocr-{_size}", _cls, TrOCR, tiny=dict(_TINY))
