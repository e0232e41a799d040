"""Data: readers, line extraction, preprocessing, batching, checks."""

from htrlab.data.dataset import FORMATS, Dataset, open_dataset
from htrlab.data.sample import LineSample

__all__ = ["FORMATS", "Dataset", "LineSample", "open_dataset"]
