"""``htrlab serve``: the API read through FastAPI's test client with the bundled model, every kind of bad upload,
the limits, the token, a full queue, the worker grouping waiting requests, and concurrent clients."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from htrlab.bundled import example_images
from htrlab.cli.main import build_parser
from htrlab.cli.serve import build_app

LINE = example_images()[0]


def _client(*options: str) -> TestClient:
    args = build_parser().parse_args(["serve", *options])
    return TestClient(build_app(args))


@pytest.fixture(scope="module")
def client() -> Any:
    with _client("--max-upload-mb", "1", "--max-pdf-pages", "2") as c:
        yield c


def _post(client: TestClient, data: bytes, name: str = "line.png", **form: str) -> Any:
    fmt = form.pop("format", "json")
    return client.post(f"/v1/read?format={fmt}", files={"file": (name, data)}, data=form)


def test_a_line_image_is_read_as_recognize_reads_it(client: TestClient) -> None:
    import htrlab

    expected = htrlab.load().read(LINE)
    reply = _post(client, LINE.read_bytes(), "my line.png")
    assert reply.status_code == 200, reply.text
    page = reply.json()
    assert page["text"] == expected.text and page["path"] == "my line.png" and page["lines"]
    assert {"text", "confidence", "box", "polygon", "baseline"} <= set(page["lines"][0])
    greedy = _post(client, LINE.read_bytes(), decoder="greedy").json()
    assert greedy["text"] == htrlab.load(decoder="greedy").read(LINE).text
    txt = _post(client, LINE.read_bytes(), format="txt")
    assert txt.text.strip() == expected.text and txt.headers["content-type"].startswith("text/plain")
    for fmt, root in (("page-xml", "PcGts"), ("alto", "alto")):
        xml = _post(client, LINE.read_bytes(), "scan.png", format=fmt)
        assert xml.status_code == 200 and root in xml.text and "scan.png" in xml.text
        assert "htrlab-serve-" not in xml.text  # the server's temporary path never shows


def test_the_page_health_models_and_docs_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>htrlab" in page.text and "/static/page.js" in page.text
    assert "http" not in page.text.split("<body>")[1].replace("http://www.w3.org", "")  # no CDN
    assert client.get("/static/page.js").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/app.py").status_code == 404
    assert client.get("/v1/health").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert models["model"] == "default" and models["limits"]["max_pdf_pages"] == 2
    assert "/v1/read" in client.get("/openapi.json").json()["paths"]


def _png(size: tuple[int, int] = (60, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 255).save(buf, "PNG")
    return buf.getvalue()


def _pdf(pages: int) -> bytes:
    buf = io.BytesIO()
    im = Image.open(LINE).convert("RGB")
    im.save(buf, "PDF", save_all=True, append_images=[im] * (pages - 1))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "form", "status", "words"),
    [
        (b"", {}, 400, "empty"),
        (b"MZ\x90\x00 not an image", {}, 415, "not an image"),
        (_png()[:40], {}, 400, "evil.png"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024 + 10), {}, 413, "upload limit"),
        (_pdf(3), {}, 413, "3 PDF pages"),
        (_png(), {"layout": "poster"}, 422, "layout must be one of"),
        (_png(), {"orientation": "45"}, 422, "orientation"),
        (_png(), {"format": "docx"}, 422, "format must be one of"),
    ],
)
def test_bad_uploads_get_a_one_line_json_error(
    client: TestClient, data: bytes, form: dict[str, str], status: int, words: str
) -> None:
    reply = _post(client, data, "../../etc/evil.png", **form)
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]
    assert words in message and "\n" not in message
    assert "/tmp" not in message and "htrlab-serve-" not in message and "../" not in message


def test_a_declared_body_over_the_limit_is_refused_before_it_is_parsed(client: TestClient) -> None:
    reply = client.post(
        "/v1/read",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert reply.status_code == 413 and "limit of 1 MB" in reply.json()["error"]


def test_a_pdf_gives_a_page_each_and_xml_asks_for_one_page(client: TestClient) -> None:
    pages = _post(client, _pdf(2), "two.pdf").json()
    assert [p["page"] for p in pages] == [1, 2] and pages[0]["text"] == pages[1]["text"]
    from htrlab.read import Page
    from htrlab.serve.app import render

    broken = Page("/tmp/htrlab-serve-x/upload.pdf#page=2", Path("/tmp/htrlab-serve-x/upload.pdf"), 2)
    broken.error = "/tmp/htrlab-serve-x/upload.pdf#page=2: damaged"
    body, _ = render([broken], "two.pdf", "json", Path("/nonexistent"))
    assert "htrlab-serve-" not in body and "two.pdf#page=2: damaged" in body
    reply = _post(client, _pdf(2), "two.pdf", format="alto")
    assert reply.status_code == 400 and "2 pages" in reply.json()["error"]


def test_pixel_limit_and_token() -> None:
    with _client("--max-pixels", "1000", "--token", "s3cret") as c:
        assert c.get("/v1/health").status_code == 200  # health needs no token
        assert c.post("/v1/read", files={"file": ("a.png", _png())}).status_code == 401
        assert c.get("/v1/models").status_code == 401
        reply = c.post(
            "/v1/read",
            files={"file": ("big.png", _png((100, 50)))},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert reply.status_code == 422 and "over this server's 1,000" in reply.json()["error"]


def test_a_full_queue_answers_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from htrlab.serve.worker import QueueFull

    def full(*_: Any) -> Any:
        raise QueueFull

    monkeypatch.setattr(client.app.state.worker, "submit", full)
    reply = _post(client, LINE.read_bytes())
    assert reply.status_code == 503 and reply.headers["retry-after"] and "busy" in reply.json()["error"]


def test_the_worker_queue_is_bounded_and_groups_waiting_jobs() -> None:
    from htrlab.serve.worker import BatchWorker, QueueFull

    release = threading.Event()
    calls: list[int] = []

    class Slow:
        def read_sources(self, sources: list[Any], **_: Any) -> list[str]:
            release.wait(10)
            calls.append(len(sources))
            return [f"page of {s}" for s in sources]

    worker = BatchWorker({"default": Slow()}, threads=1, queue_length=3)  # type: ignore[dict-item]
    first = worker.submit(["a"], ("default", "auto", "auto"))
    while worker.waiting():  # the worker has taken the first job and waits in it
        pass
    rest = [worker.submit([x], ("default", "auto", "auto")) for x in "bcd"]
    with pytest.raises(QueueFull):
        worker.submit(["e"], ("default", "auto", "auto"))
    release.set()
    assert first.result(10) == ["page of a"] and [f.result(10) for f in rest] == [
        [f"page of {x}"] for x in "bcd"
    ]
    assert calls == [1, 3]  # the three jobs that waited were read together
    worker.stop()


def test_concurrent_clients_all_succeed_with_the_same_reading(client: TestClient) -> None:
    data = LINE.read_bytes()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: _post(client, data, decoder="greedy"), range(16)))
    assert all(r.status_code == 200 for r in replies)
    assert len({r.json()["text"] for r in replies}) == 1


def test_serve_refuses_a_limit_that_is_not_positive() -> None:
    from htrlab.cli.main import main

    assert main(["serve", "--port", "0", "--queue-length", "0"]) == 2  # a limit must be positive
