"""Self-describing checkpoints: weights in safetensors, everything needed to use them in its JSON metadata.

One format for everything htrlab trains. A checkpoint file ``*.safetensors`` holds the weights and, under the
metadata key ``htrlab``, a JSON document with its format version, htrlab version, creation time and ``kind``:

- ``recognizer`` (:func:`save_checkpoint` / :func:`load_checkpoint`; a document without ``kind`` is one): model name and config, charset,
  preprocessing, a data summary with fingerprints of the training lines, and training facts;
- ``line-detector`` (:mod:`htrlab.segment.learned`) and ``char-lm`` (:mod:`htrlab.lm.neural`): their sizes and
  training facts, through :func:`save_weights` / :func:`load_weights`.

Loading checks each field and names the file. (Training *state* for resuming is a separate file:
:mod:`htrlab.train.state`.)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, save_model
from torch import nn

import htrlab
from htrlab.config import from_dict
from htrlab.data.preprocess import PreprocessConfig
from htrlab.errors import CheckpointError, ConfigError, ModelError
from htrlab.models.base import Recognizer
from htrlab.models.registry import build_model, get_spec, model_config_dict
from htrlab.text.charset import Charset

FORMAT_VERSION = 1
META_KEY = "htrlab"
KINDS = ("recognizer", "line-detector", "char-lm")
# files of the other kinds written before they joined this format: their flat metadata's "kind"
_LEGACY_KINDS = {"htrlab-line-detector": "line-detector", "htrlab-char-lstm-lm": "char-lm"}
_HEADER_LIMIT = 100_000_000


@dataclass
class CheckpointMeta:
    """What a checkpoint says about itself."""

    model_name: str
    model_config: dict[str, Any]
    charset: list[str]
    preprocess: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)  # dataset, splits, counts, fingerprints
    training: dict[str, Any] = field(default_factory=dict)  # step, epoch, val_cer, resolved config
    format_version: int = FORMAT_VERSION
    htrlab_version: str = htrlab.__version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))


@dataclass
class LoadedModel:
    model: nn.Module
    charset: Charset
    preprocess: PreprocessConfig
    meta: CheckpointMeta
    path: Path


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta) -> None:
    """Write weights + metadata atomically (a killed process never leaves a half-written checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # save_model stores tensors that share memory (tied embeddings) once
    # force_contiguous: channels-last weights (train.channels_last) are stored in the standard layout
    metadata = {META_KEY: json.dumps(asdict(meta))}
    try:
        save_model(model, str(tmp), metadata=metadata, force_contiguous=True)
    except RuntimeError as exc:
        # On a GPU, cuDNN packs an LSTM's weights into one buffer and makes each weight a view of it; safetensors
        # refuses to store views of a storage that no single tensor covers. A copy whose tensors each own their
        # memory is stored instead (tied weights stay tied: they are one Parameter object, copied once).
        if "storage" not in str(exc) and "shar" not in str(exc):
            raise
        save_model(_owning_copy(model), str(tmp), metadata=metadata, force_contiguous=True)
    tmp.replace(path)


def _owning_copy(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for t in [*twin.parameters(), *twin.buffers()]:
            t.data = t.data.clone()
    return twin


def _header_meta(path: Path) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The htrlab document of a safetensors file (None when it has none) and its flat metadata, from the
    header alone."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if n <= 0 or n > _HEADER_LIMIT:
                raise CheckpointError(f"{path} is not a safetensors checkpoint (bad header size)")
            header = json.loads(fh.read(n))
        flat = header.get("__metadata__") or {}
        if not isinstance(flat, dict):
            raise ValueError("metadata is not a mapping")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    raw = flat.get(META_KEY)
    if raw is None:
        return None, flat
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"{path}: htrlab metadata is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: htrlab metadata is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version}, this htrlab ({htrlab.__version__}) reads "
            f"version {FORMAT_VERSION}"
        )
    return data, flat


def _kind_of(data: dict[str, Any]) -> str:
    return str(data.get("kind", "recognizer"))


def read_meta(path: str | Path) -> CheckpointMeta:
    """Read and check only the metadata of a recognizer checkpoint."""
    path = Path(path)
    data, flat = _header_meta(path)
    if data is None:
        if flat.get("kind") in _LEGACY_KINDS:
            raise CheckpointError(f"{path} is a {_LEGACY_KINDS[flat['kind']]}, not a text recognizer")
        raise CheckpointError(f"{path} has no htrlab metadata: it was not written by htrlab")
    if _kind_of(data) != "recognizer":
        raise CheckpointError(f"{path} is a {_kind_of(data)} checkpoint, not a text recognizer")
    data.pop("kind", None)  # a recognizer's document needs none: every file before kinds existed was one
    try:
        return from_dict(CheckpointMeta, data, where="checkpoint")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: bad metadata: {exc}") from exc


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, meta: dict[str, Any]) -> Path:
    """Write the weights of a line detector or character LM (``kind``) with ``meta`` (JSON values: its sizes
    and training facts) in the checkpoint format, atomically."""
    if kind not in KINDS or kind == "recognizer":
        raise ValueError(f"save_weights writes line-detector or char-lm weights, not {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        **meta,
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "htrlab_version": htrlab.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = path.with_name(path.name + ".tmp")
    owned = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(owned, str(tmp), metadata={META_KEY: json.dumps(doc)})
    tmp.replace(path)
    return path


def load_weights(path: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The metadata document and the tensors of a ``kind`` checkpoint (see :func:`save_weights`); files of
    that kind written before it joined this format (flat metadata) are read too.

    Raises:
        CheckpointError: a missing, damaged or foreign file, or one of another kind, naming the file.
    """
    path = Path(path)
    data, flat = _header_meta(path)
    if data is None:
        legacy = _LEGACY_KINDS.get(str(flat.get("kind")))
        if legacy is None:
            raise CheckpointError(f"{path} has no htrlab metadata: it is not a {kind} written by htrlab")
        data = {**flat, "kind": legacy}
    if _kind_of(data) != kind:
        raise CheckpointError(f"{path} is a {_kind_of(data)} checkpoint, not a {kind}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights: {exc}") from exc
    return data, tensors


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model described by a checkpoint and load its weights (eval mode).

    Raises:
        CheckpointError: naming the file and the field that does not fit.
    """
    path = Path(path)
    meta = read_meta(path)
    _refuse_outside_sources(path, meta.model_name, meta.model_config)
    try:
        charset = Charset(meta.charset)
        preprocess = from_dict(PreprocessConfig, meta.preprocess, where="checkpoint.preprocess")
        _refuse_oversized(path, meta.model_name, len(charset), meta.model_config)
        model = build_model(meta.model_name, len(charset), meta.model_config)
    except (ConfigError, ModelError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights: {exc}") from exc
    if isinstance(model, Recognizer):
        state = model.upgrade_state(state)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = _untied(model, missing, state)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise CheckpointError(
            f"{path}: weights do not fit model '{meta.model_name}' with {len(charset)} classes: {first}"
        ) from exc
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit model '{meta.model_name}' (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )
    model.to(device).eval()
    return LoadedModel(model, charset, preprocess, meta, path)


# model settings that name a pretrained model to fetch, and the copy of its architecture kept beside them
_COPIES = {"pretrained": ("hf_config", "encoder_config")}


def _refuse_outside_sources(path: Path, name: str, params: dict[str, Any]) -> None:
    """A checkpoint is rebuilt from its own file (and htrlab's bundled files) alone: one that names a pretrained
    model without holding a copy of its architecture would make the model fetch it (from a model hub, over the
    network, or from any folder on this machine). Checkpoints htrlab writes always hold the copy."""
    try:
        known = {f.name for f in dataclasses.fields(get_spec(name).config_cls)}
    except ModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    for key, copies in _COPIES.items():
        named = params.get(key)
        if not named or not isinstance(named, str) or not known & set(copies):
            continue
        if not any(params.get(c) for c in copies):
            raise CheckpointError(
                f"{path}: names the pretrained model {named!r} but holds no copy of its architecture; a "
                "checkpoint is loaded from its own file only, never fetched from a model hub or another folder"
            )


def _stored_numel(path: Path) -> int:
    """How many numbers the file's tensors hold, from its header alone."""
    with open(path, "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    return sum(math.prod(v.get("shape", [])) for k, v in header.items() if k != "__metadata__")


def _refuse_oversized(path: Path, name: str, classes: int, params: dict[str, Any]) -> None:
    """A tampered configuration (channels of 10^5, say) would allocate a model of hundreds of GB before its
    weights are found not to fit: the model is first built without memory (PyTorch's meta device) and
    compared with what the file holds."""
    try:
        with torch.device("meta"):
            probe = build_model(name, classes, params)
        wanted = sum(t.numel() for t in probe.state_dict().values())
    except (ConfigError, ModelError, CheckpointError):
        raise
    except Exception:  # an architecture that cannot be built without memory (ppocrv5-rec's ONNX graph)
        return
    stored = _stored_numel(path)
    if wanted > 4 * stored + 1_000_000:
        raise CheckpointError(
            f"{path}: its metadata describes a model of {wanted:,} weights but the file holds {stored:,}; "
            "the configuration does not belong to these weights"
        )


def _untied(model: nn.Module, missing: list[str], state: dict[str, torch.Tensor]) -> list[str]:
    """Names missing from a file only because they share memory with a stored tensor (saved once) are fine."""
    params = dict(model.named_parameters(remove_duplicate=False))
    by_storage: dict[int, list[str]] = {}
    for name, p in params.items():
        by_storage.setdefault(p.data_ptr(), []).append(name)
    really = []
    for name in missing:
        twins = by_storage.get(params[name].data_ptr(), []) if name in params else []
        if not any(t in state for t in twins if t != name):
            really.append(name)
    return really


def make_meta(
    model: nn.Module,
    model_name: str,
    charset: Charset,
    preprocess: PreprocessConfig,
    data: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> CheckpointMeta:
    return CheckpointMeta(
        model_name=model_name,
        model_config=model_config_dict(model),
        charset=charset.to_list(),
        preprocess=asdict(preprocess),
        data=dict(data or {}),
        training=dict(training or {}),
    )


def warm_start(model: nn.Module, charset: Charset, source: LoadedModel) -> list[str]:
    """Copy the weights of ``source`` (same architecture) into ``model``, whose charset may be larger.

    Every tensor of equal shape is copied, or adapted by the model's ``warm_start_tensor(name, tensor)`` where
    it has one and the shapes differ. A tensor whose first dimension is the number of classes (the output
    layer) is copied row by row for the characters both charsets share; rows of characters the source never
    saw start small, with a low bias, so they do not fire before they are trained. Returns those characters.

    Raises:
        CheckpointError: when a tensor does not fit (another architecture or configuration).
    """
    old_n, new_n = len(source.charset), len(charset)
    src_state = source.model.state_dict()
    dst_state = model.state_dict()
    missing = sorted(set(dst_state) - set(src_state))
    if missing:
        raise CheckpointError(
            f"{source.path}: cannot start model '{source.meta.model_name}' from it: tensors missing {missing[:3]}"
        )
    rows = [0] + [source.charset.encode(c)[0] if c in source.charset else -1 for c in charset.symbols]
    new_chars = [c for c in charset.symbols if c not in source.charset]
    same = charset == source.charset
    # a model may know how to take a tensor of another configuration (ppocrv5-rec: a 48-px stem at 96 px)
    adapt = model.warm_start_tensor if isinstance(model, Recognizer) and model.adapts_input_height else None
    # the output layer is recognised as the tensors whose first dimension is the number of classes
    with torch.no_grad():
        for name, dst in dst_state.items():
            src = src_state[name]
            per_class = (
                src.ndim >= 1
                and src.shape[0] == old_n
                and dst.shape[0] == new_n
                and src.shape[1:] == dst.shape[1:]
            )
            if per_class and not same:
                low = src.min() - 1.0 if src.ndim == 1 else 0.0
                for i, j in enumerate(rows):
                    if j >= 0:
                        dst[i] = src[j]
                    elif src.ndim == 1:
                        dst[i] = low
                    else:
                        dst[i].normal_(0.0, 0.01)
            elif src.shape == dst.shape:
                dst.copy_(src)
            elif (adapted := adapt(name, src) if adapt is not None else None) is not None:
                dst.copy_(adapted)
            else:
                raise CheckpointError(
                    f"{source.path}: tensor {name} has shape {tuple(src.shape)}, this model needs "
                    f"{tuple(dst.shape)}; init_from needs the same model configuration"
                )
    return new_chars
