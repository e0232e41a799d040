"""Name -> (config dataclass, model class). An unknown name raises an error listing the known ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from htrlab.config import from_dict, to_dict
from htrlab.errors import ModelError
from htrlab.models.base import Recognizer


@dataclass
class ModelSpec:
    name: str
    config_cls: type
    model_cls: type[Recognizer]
    tiny: dict[str, Any]
    description: str


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, config_cls: type, model_cls: type[Recognizer], tiny: dict[str, Any]) -> None:
    """Register an architecture under ``name`` with the overrides of its tiny test configuration; what it is
    and its size are in :data:`htrlab.models.catalog.CATALOG` (read without importing PyTorch)."""
    from htrlab.models.catalog import CATALOG

    if name not in CATALOG:
        raise ModelError(f"model {name!r} is not in htrlab.models.catalog.CATALOG")
    if not issubclass(model_cls, Recognizer):
        raise ModelError(
            f"model {name!r}: {model_cls.__name__} does not implement htrlab.models.base.Recognizer"
        )
    _REGISTRY[name] = ModelSpec(name, config_cls, model_cls, tiny, CATALOG[name].description)


def _ensure_loaded() -> None:
    # Importing the architecture modules runs their register() lines.
    from htrlab.models import crnn, htr_jand, ppocr, trocr, vit_ctc  # noqa: F401


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model '{name}'; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_names() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def make_config(name: str, params: dict[str, Any] | None = None, tiny: bool = False) -> Any:
    """The config dataclass of model ``name``: defaults, then the tiny overrides, then ``params`` (strict)."""
    spec = get_spec(name)
    data = dict(spec.tiny) if tiny else {}
    data.update(params or {})
    return from_dict(spec.config_cls, data, where="model.params")


def build_model(
    name: str, num_classes: int, params: dict[str, Any] | None = None, tiny: bool = False
) -> Recognizer:
    """Instantiate a registered model with ``num_classes`` outputs (blank included)."""
    spec = get_spec(name)
    cfg = make_config(name, params, tiny)
    return spec.model_cls(cfg, num_classes)


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    return to_dict(model.cfg)  # type: ignore[arg-type]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
