"""Reading images: the one path from a model file to text.

    import htrlab
    reader = htrlab.load()                      # htrlab.read.load: the bundled model, its bundled decoder
    page = reader.read("letter.jpg")            # a path, a NumPy array, a PIL image, or a list of them

- :mod:`.reader`: :func:`load` -> :class:`Reader`; :meth:`Reader.read` -> :class:`Page` (lines found, cut, read).
- :mod:`.engines`: a model file loaded to run (PyTorch, onnxruntime, OpenVINO), all alike to callers.
- :mod:`.predict`: preprocessed lines through an engine in width-bucketed batches, then a decoder.

Decoders (:mod:`htrlab.decoding`, one :class:`DecoderConfig`) and line finding (:mod:`htrlab.segment`) are the
layers below; ``recognize``, ``segment``, ``evaluate``, ``benchmark`` and training's validation read through
this package.
"""

from htrlab.decoding.config import DecoderConfig
from htrlab.read.reader import Page, Reader, Source, load, page_sources, sources_of

__all__ = ["DecoderConfig", "Page", "Reader", "Source", "load", "page_sources", "sources_of"]
