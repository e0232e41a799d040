"""Model architectures and their registry (imported on first use: :mod:`htrlab.models.catalog` says what the
architectures are without loading PyTorch)."""

from __future__ import annotations

from typing import Any

__all__ = ["build_model", "count_parameters", "get_spec", "model_names"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from htrlab.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'htrlab.models' has no attribute {name!r}")
