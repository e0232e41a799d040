"""``htrlab serve``: a REST API and a web page for reading handwriting, on :mod:`htrlab.read`.

- :mod:`.worker`: one model, read by worker threads that take every request waiting at once, so that concurrent
  clients share forward passes;
- :mod:`.app`: the FastAPI application (``POST /v1/read``, ``GET /v1/health``, ``GET /v1/models``, the page at
  ``/``), its limits and its errors.
"""
