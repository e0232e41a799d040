"""Files that ship inside the package: the default model's weights and example line images."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from htrlab.errors import CheckpointError

# The default model ships twice: its weights (float16 safetensors, the form training starts from with
# `model.init_from=default`) and an ONNX export that `htrlab recognize` runs with onnxruntime (no extra packages).
DEFAULT_MODEL = "htrlab-default.onnx"
DEFAULT_WEIGHTS = "htrlab-default.safetensors"
# How the default model reads by default: beam search with a character 6-gram of public-domain 19th-century
# English and the Hooker training transcriptions (`htrlab lm build`, see MODEL_CARD.md), at the LM weight and
# word score chosen on Hooker val (benchmarks/crop_styles.py --tune).
DEFAULT_DECODING = "htrlab-default.decoding.json"


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


def is_default_model(spec: str | Path | None) -> bool:
    """Whether a ``-m`` value names the bundled default model ("default", nothing, or its files)."""
    if spec is None or str(spec) == "default":
        return True
    try:
        path = Path(spec).resolve()
    except (OSError, RuntimeError):
        return False
    return path in (_package_dir("weights") / DEFAULT_MODEL, _package_dir("weights") / DEFAULT_WEIGHTS)


def default_decoding() -> dict[str, Any] | None:
    """The default model's decoder settings (``decoder``, ``lm`` as a path, weights), or ``None`` when this
    installation has no bundled LM."""
    path = _package_dir("weights") / DEFAULT_DECODING
    if not path.is_file():
        return None
    settings = dict(json.loads(path.read_text(encoding="utf-8"))["settings"])
    lm = _package_dir("weights") / settings["lm"]
    if not lm.is_file():
        return None
    settings["lm"] = str(lm)
    return settings


def example_images() -> list[Path]:
    """The example line images shipped with htrlab."""
    return sorted(_package_dir("examples").glob("*.png"))
