"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through Debian's chromedriver
(nothing is downloaded at test time), uploads a line image to a running ``htrlab serve`` and reads the text on
the page. The screenshot is kept in ``$HTRLAB_TEST_ARTIFACTS`` (.ci/run sets it), else in the test's folder."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from htrlab.bundled import example_images


def _driver_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def server() -> Any:
    import uvicorn

    from htrlab.cli.main import build_parser
    from htrlab.cli.serve import build_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(build_parser().parse_args(["serve"]))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(timeout=10)


def test_the_page_reads_an_uploaded_line_in_a_real_browser(server: str, tmp_path: Path) -> None:
    paths = _driver_paths()
    if paths is None:
        pytest.skip(
            "no Chromium and chromedriver here (Debian packages chromium, chromium-driver; .ci/run installs them)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import htrlab

    line = example_images()[0]
    expected = htrlab.load().read(line).text
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,800",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=paths[1]))
    try:
        browser.get(server)
        assert "htrlab" in browser.title
        browser.find_element(By.ID, "file").send_keys(str(line))  # choosing a file reads it
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#lines li"))
        shown = [
            li.find_element(By.CSS_SELECTOR, "span").text
            for li in browser.find_elements(By.CSS_SELECTOR, "#lines li")
        ]
        assert " ".join(shown) == expected
        assert "line" in browser.find_element(By.ID, "status").text
        assert browser.find_elements(
            By.CSS_SELECTOR, "#overlay polygon"
        )  # the line found, drawn over the image
        folder = Path(os.environ.get("HTRLAB_TEST_ARTIFACTS") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(folder / "serve-page.png"))
    finally:
        browser.quit()
