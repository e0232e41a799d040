"""The web service: ``POST /v1/read`` reads an uploaded image or PDF, ``GET /v1/health`` and ``GET /v1/models``
say how it stands, ``/`` serves the page (``static/index.html``, every asset from htrlab itself), OpenAPI at
``/docs``.

Everything a client sends is untrusted: an upload is written under a fresh temporary folder with a name the
server chooses (never the client's), checked against the limits of :class:`ServeSettings`, read, and deleted;
errors are JSON ``{"error": ...}`` with a 4xx status and the same one-line messages as the command line, naming
the file by the client's (cleaned) file name. A full queue answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

import htrlab
from htrlab.errors import HTRError
from htrlab.read.reader import LAYOUTS, Page, Reader, page_sources
from htrlab.segment.orient import ORIENTATIONS
from htrlab.serve.settings import ServeSettings
from htrlab.serve.worker import BatchWorker, QueueFull

FORMATS = ("json", "txt", "page-xml", "alto")
DECODERS = ("default", "greedy")
STATIC = Path(__file__).resolve().parent / "static"
# what an upload may be, by its first bytes (the client's file name and content type are not trusted)
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"%PDF-", ".pdf"),
    (b"BM", ".bmp"),
    (b"GIF8", ".gif"),
)


class ClientError(Exception):
    """A request that cannot be served: its HTTP status and one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def clean_name(name: str | None) -> str:
    """The client's file name as shown in messages and written in XML: its last path part, printable, short."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")[:100]
    return base or "upload"


def suffix_of(head: bytes) -> str:
    for magic, suffix in _MAGIC:
        if head.startswith(magic):
            return suffix
    raise ClientError(415, "not an image or PDF htrlab reads (PNG, JPEG, TIFF, BMP, GIF or PDF)")


def check_pages(path: Path, name: str, settings: ServeSettings) -> list[Any]:
    """The pages of the upload at ``path`` (a PDF's or TIFF's each), within the limits."""
    from htrlab.data.documents import input_pages
    from htrlab.errors import DataError

    try:
        pages, _ = input_pages([path], "error")
    except DataError as exc:
        raise ClientError(400, str(exc).replace(str(path), name)) from exc
    if path.suffix == ".pdf" and len(pages) > settings.max_pdf_pages:
        raise ClientError(413, f"{name}: {len(pages)} PDF pages, over this server's {settings.max_pdf_pages}")
    return pages


def render(pages: list[Page], name: str, fmt: str, work: Path) -> tuple[str, str]:
    """(body, media type) of the pages read, in ``fmt``."""
    import json

    from htrlab.segment.export import write_alto, write_page_xml

    for page in pages:  # the client's name, never the server's temporary path
        if page.path is not None and page.error is not None:
            page.error = page.error.replace(str(page.path), name)
        page.source = page.source.replace(str(page.path), name) if page.path else name
        page.path = None
    if fmt == "txt":
        return "\n\n".join(p.text for p in pages) + "\n", "text/plain; charset=utf-8"
    if fmt == "json":
        rows = [p.to_dict() for p in pages]
        for row in rows:
            row["path"] = name
        return json.dumps(rows[0] if len(rows) == 1 else rows, ensure_ascii=False), "application/json"
    if len(pages) != 1:
        raise ClientError(
            400, f"{name}: {len(pages)} pages; {fmt} is one file per page (ask for json or txt)"
        )
    page = pages[0]
    if page.layout is None:
        raise ClientError(422, f"{name}: {page.error}")
    writer = write_page_xml if fmt == "page-xml" else write_alto
    out = writer(page.layout, name, work / "out.xml")
    return out.read_text(encoding="utf-8"), "application/xml"


def create_app(
    readers: dict[str, Reader], settings: ServeSettings, model: str = "default", threads: int = 1
) -> Any:
    """The FastAPI application over ``readers`` (``"default"``: the model with its decoder; ``"greedy"``)."""
    worker = BatchWorker(readers, threads, settings.queue_length)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        worker.stop()  # the reading threads end with the server

    app = FastAPI(
        title="htrlab",
        summary="Handwritten text recognition of English",
        version=htrlab.__version__,
        lifespan=lifespan,
    )
    app.state.worker = worker

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next: Any) -> Any:
        # before the multipart body is parsed (and spooled to disk): a declared length over the limit is refused
        # at once; the handler checks the bytes again (a chunked upload declares none)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_upload_mb * 1024 * 1024 + 65536:
            message = f"the upload is over this server's limit of {settings.max_upload_mb:g} MB"
            return JSONResponse({"error": message}, status_code=413)
        return await call_next(request)

    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    def authorise(request: Request) -> None:
        if settings.token and request.headers.get("authorization", "") != f"Bearer {settings.token}":
            raise ClientError(401, "this server needs a token: Authorization: Bearer TOKEN")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        known = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in known:  # a name the server lists itself, never a path from the client
            raise ClientError(404, f"no such asset {clean_name(name)!r}")
        return FileResponse(known[name])

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "waiting": worker.waiting(), "queue_length": settings.queue_length}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorise(request)
        reader = readers["default"]
        cfg = reader.decoder_config
        return {
            "model": model,
            "engine": reader.engine.name,
            "parameters": reader.engine.params,
            "characters": len(reader.charset) - 1,
            "decoders": {"default": cfg.decoder, "greedy": "greedy"},
            "layouts": list(LAYOUTS),
            "formats": list(FORMATS),
            "limits": {
                "max_upload_mb": settings.max_upload_mb,
                "max_pixels": settings.max_pixels,
                "max_pdf_pages": settings.max_pdf_pages,
                "request_timeout_s": settings.request_timeout_s,
            },
        }

    @app.post("/v1/read", response_model=None)
    async def read(
        request: Request,
        file: Annotated[UploadFile, File(description="an image (PNG, JPEG, TIFF, BMP, GIF) or a PDF")],
        layout: Annotated[str, Form()] = "auto",
        decoder: Annotated[str, Form()] = "default",
        orientation: Annotated[str, Form()] = "auto",
        format: str = "json",
    ) -> Response:
        authorise(request)
        for value, allowed, what in (
            (layout, LAYOUTS, "layout"),
            (decoder, DECODERS, "decoder"),
            (orientation, ORIENTATIONS, "orientation"),
            (format, FORMATS, "format"),
        ):
            if value not in allowed:
                raise ClientError(422, f"{what} must be one of {', '.join(allowed)}, got {value[:40]!r}")
        name = clean_name(file.filename)
        limit = int(settings.max_upload_mb * 1024 * 1024)
        with tempfile.TemporaryDirectory(prefix="htrlab-serve-") as tmp:
            work = Path(tmp)
            data = await file.read(limit + 1)
            if len(data) > limit:
                raise ClientError(
                    413, f"{name}: over this server's upload limit of {settings.max_upload_mb:g} MB"
                )
            if not data:
                raise ClientError(400, f"{name}: the upload is empty")
            path = work / f"upload{suffix_of(data[:16])}"
            path.write_bytes(data)
            del data
            pages = check_pages(path, name, settings)
            sources = page_sources(pages, pdf_dpi=None)
            for src in sources:
                src.load = _limited(src.load, name, settings.max_pixels)
            try:
                future = worker.submit(sources, (decoder, layout, orientation))
            except QueueFull as exc:
                raise ClientError(
                    503, "the server is busy: try again shortly", {"Retry-After": str(settings.retry_after_s)}
                ) from exc
            try:
                found = await asyncio.wait_for(asyncio.wrap_future(future), settings.request_timeout_s)
            except TimeoutError as exc:
                future.cancel()
                raise ClientError(504, f"{name}: not read within {settings.request_timeout_s:g} s") from exc
            except HTRError as exc:
                raise ClientError(400, str(exc).replace(str(path), name)) from exc
            errors = [p.error for p in found if p.error]
            if errors and len(errors) == len(found):
                raise ClientError(422, errors[0].replace(str(path), name))
            body, media = render(found, name, format, work)
        return Response(body, media_type=media)

    return app


def _limited(load: Any, name: str, max_pixels: int) -> Any:
    """``load`` that refuses an image of more than ``max_pixels`` (a DataError, read as the page's error)."""
    from htrlab.errors import DataError

    def checked() -> Any:
        gray = load()
        if gray.size > max_pixels:
            raise DataError(
                f"{name}: {gray.shape[1]}x{gray.shape[0]} pixels, over this server's {max_pixels:,}"
            )
        return gray

    return checked


__all__ = ["FORMATS", "ClientError", "ServeSettings", "create_app"]
