"""The limits and access of ``htrlab serve`` (kept apart from the application so that the command line reads
their defaults without importing FastAPI)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeSettings:
    """The service's limits and access (each an ``htrlab serve`` option)."""

    max_upload_mb: float = 20.0  # bytes of one upload
    max_pixels: int = 40_000_000  # pixels of one image or PDF page as read
    max_pdf_pages: int = 20  # pages of one PDF
    request_timeout_s: float = 120.0  # a request waiting longer (queue + reading) is answered 504
    queue_length: int = 64  # requests waiting to be read; more are answered 503
    token: str | None = None  # when set, requests need "Authorization: Bearer TOKEN" (the page asks for it)
    retry_after_s: int = 2
