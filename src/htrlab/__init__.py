"""htrlab: handwritten text recognition of English.

    import htrlab
    reader = htrlab.load()                   # the bundled model and its decoder (htrlab.read)
    print(reader.read("letter.jpg").text)

Data readers, preprocessing, models (HTR-JAND, ...), training, evaluation and recognition. The names below are
imported on first use, so that ``import htrlab`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("load", "Reader", "Page", "DecoderConfig")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from htrlab import read

        return getattr(read, name)
    raise AttributeError(f"module 'htrlab' has no attribute {name!r}")
