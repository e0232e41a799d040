"""Training state for ``--resume`` (optimizer, averaged weights, progress, random generators) stored without
pickle: the tensors in a safetensors file, everything else as JSON in its metadata.

Why not ``torch.save``: a run folder is something users share and download, and unpickling a crafted
``.pt`` file runs code (``weights_only=False``); even ``weights_only=True`` keeps a pickle parser on the path,
whose restrictions older torch versions got wrong. safetensors has no code path at all, but stores only a flat
``name -> tensor`` map; this module maps nested state (dicts with int or str keys, lists, tuples, numbers,
strings, tensors, numpy generator states) onto that map and back. No library does that mapping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from htrlab.errors import CheckpointError

STATE_FORMAT = "htrlab-train-state-1"
_KEY = "htrlab_state"


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().to("cpu").contiguous().clone()  # owns its storage (no shared views)
        return {"__t": name}
    if isinstance(value, dict):
        return {"__d": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"__f": repr(value)}  # inf / nan: JSON proper has no literal for them
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"training state holds a {type(value).__name__}, which is not stored")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__t"}:
            return tensors[value["__t"]]
        if set(value) == {"__d"}:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__d"]}
        if set(value) == {"__tuple"}:
            return tuple(_decode(v, tensors) for v in value["__tuple"])
        if set(value) == {"__f"} and value["__f"] in ("inf", "-inf", "nan"):
            return float(value["__f"])
        raise ValueError(f"unknown entry {sorted(value)[:3]}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"unexpected {type(value).__name__}")


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (a half-written file never replaces the last good one)."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state, tensors)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": STATE_FORMAT, _KEY: json.dumps(structure)})
    os.replace(tmp, path)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state`.

    Raises:
        CheckpointError: the file is missing, truncated, not safetensors, or not an htrlab training state.
    """
    path = Path(path)
    if path.suffix == ".pt":
        raise CheckpointError(
            f"{path}: a training state in pickle format (older htrlab), which is not loaded because unpickling "
            "a file can run code; start a new run from its weights instead (model.init_from=last.safetensors)"
        )
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != STATE_FORMAT or _KEY not in meta:
            raise ValueError(f"not an htrlab training state (format {meta.get('format')!r})")
        tensors = load_file(str(path))
        state = _decode(json.loads(meta[_KEY]), tensors)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: training state not found") from exc
    except (OSError, SafetensorError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: unreadable training state: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: unreadable training state: not a mapping")
    return state
