"""One error hierarchy for everything htrlab reports to a user.

Every error message says what went wrong, where (file, sample id, config key) and, when known, how to fix it.
The CLI prints ``str(error)`` on one line (exit code 1, or 2 for usage/config errors); ``--debug`` shows the
traceback.
"""

from __future__ import annotations


class HTRError(Exception):
    """Base class of all htrlab errors."""

    exit_code = 1


class ConfigError(HTRError):
    """A configuration value or key is wrong (unknown key, wrong type, invalid value)."""

    exit_code = 2


class DataError(HTRError):
    """A data file or sample is unreadable, malformed or unusable (names the file and sample)."""


class CharsetError(DataError):
    """Text contains characters outside the model's character set."""


class CheckpointError(HTRError):
    """A checkpoint is missing, corrupt or incompatible with this htrlab version."""


class ModelError(HTRError):
    """A model name is unknown or a model was given input it cannot process."""


class ImageReduced(UserWarning):
    """Not an error: an image or PDF page over htrlab's pixel limit was read at a reduced resolution (the
    message names the file and both sizes). The CLI prints it as a one-line note."""
