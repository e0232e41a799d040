"""Files that ship inside the package: the default model's weights and example line images."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from htrlab.errors import CheckpointError

DEFAULT_MODEL = "htr-jand-hooker.safetensors"


def _package_dir(name: str) -> Path:
    return Path(str(resources.files("htrlab") / name))


def default_checkpoint() -> Path:
    """The bundled default model (see ``htrlab/weights/MODEL_CARD.md``)."""
    path = _package_dir("weights") / DEFAULT_MODEL
    if not path.is_file():
        raise CheckpointError(
            f"the bundled default model {path} is missing from this installation; "
            "pass a checkpoint with -m CHECKPOINT"
        )
    return path


def example_images() -> list[Path]:
    """The example line images shipped with htrlab."""
    return sorted(_package_dir("examples").glob("*.png"))
