"""The contract every registered architecture implements: :class:`Recognizer`.

A recognizer is a ``torch.nn.Module`` that says what it can do with class-level flags, and implements the
methods its flags promise; callers test the flags (or :func:`is_seq2seq` for any module), never probe for
attributes.

- CTC models (``seq2seq = False``): ``forward(images (N, 1, H, W), widths (N,)) -> (log_probs (N, T, C),
  lengths (N,))`` and ``output_length(widths)``.
- autoregressive models (``seq2seq = True``): ``forward(images, widths, targets, target_lengths, texts)`` -> the
  training loss, and ``generate(images, charset, ...)`` -> texts and confidences.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeGuard

import torch
from torch import nn


class Recognizer(nn.Module):
    """Base class of htrlab's line recognizers (see the module docstring)."""

    seq2seq: ClassVar[bool] = False  # autoregressive (generate) rather than CTC
    has_pretrained: ClassVar[bool] = False  # init_pretrained(charset) starts from published weights
    adapts_input_height: ClassVar[bool] = False  # warm_start_tensor takes tensors of another input height
    own_onnx_graph: ClassVar[bool] = False  # onnx_graph() writes its ONNX (its PyTorch form does not export)

    def generate(
        self, images: torch.Tensor, charset: Any, num_beams: int | None = None, logits_processor: Any = None
    ) -> tuple[list[str], list[float]]:
        """Autoregressive models (``seq2seq``): the text of each line and a confidence."""
        raise NotImplementedError(f"{type(self).__name__} is a CTC model: decode its forward() output")

    eos: int = 2  # autoregressive models: the end-of-sequence token id (set by each model)

    def token_texts(self, charset: Any) -> list[str]:
        """Autoregressive models: the text of each output token (for fusing a character LM into the search)."""
        raise NotImplementedError(f"{type(self).__name__} is a CTC model: its outputs are the charset's")

    def init_pretrained(self, charset: Any) -> list[str]:
        """Load the configured pretrained weights; returns the characters whose output rows start new."""
        raise NotImplementedError(f"{type(self).__name__} has no pretrained weights")

    def warm_start_tensor(self, name: str, src: torch.Tensor) -> torch.Tensor | None:
        """``src``, from a checkpoint of another input height, made to fit tensor ``name`` (None: it cannot)."""
        return None

    def upgrade_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict as stored by an older htrlab, renamed to this version's tensor names (identity here)."""
        return state

    def onnx_graph(self) -> Any:
        """The model as an ONNX ``ModelProto``."""
        raise NotImplementedError(f"{type(self).__name__} exports through torch.onnx")


def is_seq2seq(module: Any) -> TypeGuard[Recognizer]:
    """Whether ``module`` (any module, or ``None``) is an autoregressive recognizer."""
    return isinstance(module, Recognizer) and module.seq2seq


__all__ = ["Recognizer", "is_seq2seq"]
