"""Text handling: Unicode normalisation and the model character set."""

from htrlab.text.charset import Charset
from htrlab.text.normalize import normalize_text

__all__ = ["Charset", "normalize_text"]
