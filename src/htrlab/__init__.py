"""htrlab: handwritten text recognition of English.

Data readers, preprocessing, models (HTR-JAND, ...), training, evaluation and recognition.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
