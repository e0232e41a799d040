"""Readers for the dataset layouts htrlab understands; each returns a list of LineSample."""

from htrlab.data.readers.alto import read_alto_file
from htrlab.data.readers.bentham import read_bentham
from htrlab.data.readers.common import Problems
from htrlab.data.readers.cvl import read_cvl
from htrlab.data.readers.folder import read_folder, read_tsv
from htrlab.data.readers.iam import read_iam
from htrlab.data.readers.pagexml import read_page_file

__all__ = [
    "Problems",
    "read_alto_file",
    "read_bentham",
    "read_cvl",
    "read_folder",
    "read_iam",
    "read_page_file",
    "read_tsv",
]
