"""The Voila prediction page, in Python and in a real headless Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.dashboard import Dashboard
from helpers.fetch import FetchPolicy
from helpers.train import TrainConfig, train
from helpers.workshop import FolderServer
from tests.test_dataset import make_tags

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("HASHTAG_ARTIFACTS", REPO / "tests" / "artifacts"))


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory, tiny_module):
    tmp = tmp_path_factory.mktemp("dash")
    images = make_tags(tmp / "hashtags", per_tag=25)
    result = train(
        TrainConfig(
            image_dir=str(images),
            backbone=str(tiny_module),
            learning_rate=0.01,
            bottleneck_dir=str(tmp / "b"),
            runs_dir=str(tmp / "runs"),
            models_dir=str(tmp / "models"),
        ),
        progress=False,
    )
    return images, result.model_dir


def test_panels_predict_urls_uploads_and_explain_errors(colour_model):
    images, model_dir = colour_model
    board = Dashboard(model_dir, FetchPolicy(allow_hosts=frozenset({"localhost"})))
    board.widget()
    first, second = board.panels
    red = sorted((images / "red").iterdir())[0]
    with FolderServer(red.parent) as site:
        first.predict_url(f"{site.url}/{red.name}")
    assert first.result.value.startswith("<b>#red</b>") and first.chart.value[:4] == b"\x89PNG"
    assert first.chart.layout.display == ""
    green = sorted((images / "green").iterdir())[0]
    second._on_upload({"new": [{"name": green.name, "content": memoryview(green.read_bytes())}]})
    assert second.result.value.startswith("<b>#green</b>")
    first.predict_url("http://127.0.0.1:1/x.jpg")
    assert "Could not use that URL" in first.message.value and first.result.value == ""
    assert first.chart.layout.display == "none", "no stale chart beside an error"
    first.predict_bytes(b"<html></html>", "page.html")
    assert "not an image" in first.message.value
    first.predict_url("")
    assert "Paste an image URL" in first.message.value


def test_without_a_model_the_page_says_what_to_do(tmp_path):
    board = Dashboard(tmp_path / "nothing")
    assert "No trained model yet" in board.widget().children[1].value
    board.panels[0].predict_bytes(b"\xff\xd8\xff", "x.jpg")
    assert "No trained model yet" in board.panels[0].message.value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def test_dashboard_in_a_real_browser(sample_model, browser):
    images, model_dir = sample_model
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or "voila"
    env = {**os.environ, "HASHTAG_MODEL": str(model_dir), "HASHTAG_ALLOW_HOSTS": "localhost"}
    server = subprocess.Popen(
        [
            voila,
            str(REPO / "notebooks" / "dashboard.ipynb"),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    sunset, snow = images / "sunset" / "sunset_001.jpg", images / "snow" / "snow_001.jpg"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.3)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/", timeout=90_000)
        page.wait_for_selector(".hp-url-1 input", timeout=90_000)
        assert "knows:" in page.inner_text(".hp-model")
        page.screenshot(path=str(ARTIFACTS / "dashboard-empty.png"))

        with FolderServer(sunset.parent) as site:
            page.fill(".hp-url-1 input", f"{site.url}/{sunset.name}")
            page.click(".hp-predict-1")
            page.wait_for_selector(".hp-result-1 :text('#sunset')", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "dashboard-url.png"))

        page.click(".hp-compare input")
        # ipywidgets' upload button opens a file input that is never in the page: answer the
        # file chooser it raises, as a person would
        with page.expect_file_chooser() as chooser:
            page.click(".hp-upload-2")
        chooser.value.set_files(str(snow))
        page.wait_for_selector(".hp-result-2 :text('#snow')", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "dashboard-compare.png"))

        page.fill(".hp-url-1 input", "http://127.0.0.1:1/nothing.jpg")
        page.click(".hp-predict-1")
        page.wait_for_selector(".hp-message-1 :text('Could not use that URL')", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "dashboard-error.png"))
    finally:
        server.terminate()
        server.wait(timeout=30)
