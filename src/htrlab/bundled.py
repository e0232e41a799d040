"""Files that ship inside the package: the default model's weights and example line images."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from htrlab.errors import CheckpointError

# The default model ships twice: its weights (float16 safetensors, the form training starts from with
# `model.init_from=default`) and an ONNX export that `htrlab recognize` runs with onnxruntime (no extra packages).
DEFAULT_MODEL = "htrlab-default.onnx"
DEFAULT_WEIGHTS = "htrlab-default.safetensors"


def _package_dir(name: str) -> Path:
    return Path(str(resources.files("htrlab") / name))


def default_checkpoint(engine: str = "auto") -> Path:
    """The bundled default model (see ``htrlab/weights/MODEL_CARD.md``): its ONNX export, or its weights for
    ``engine="torch"``."""
    path = _package_dir("weights") / (DEFAULT_WEIGHTS if engine == "torch" else DEFAULT_MODEL)
    if not path.is_file():
        raise CheckpointError(
            f"the bundled default model {path} is missing from this installation; "
            "pass a checkpoint with -m CHECKPOINT"
        )
    return path


def example_images() -> list[Path]:
    """The example line images shipped with htrlab."""
    return sorted(_package_dir("examples").glob("*.png"))
