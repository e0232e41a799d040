"""Model architectures and their registry."""

from htrlab.models.registry import build_model, count_parameters, get_spec, model_names

__all__ = ["build_model", "count_parameters", "get_spec", "model_names"]
