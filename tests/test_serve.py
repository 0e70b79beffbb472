"""The prediction API: the original curl call, every bad input, reload, training, fuzzing."""

import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers.atomic import point_symlink
from helpers.fetch import FetchPolicy
from helpers.serve import ServiceConfig, create_app
from helpers.train import TrainConfig, train
from tests.loopback import LoopbackServer, redirect, respond, slow, stream
from tests.test_dataset import make_tags

REPO = Path(__file__).resolve().parents[1]


def jpeg(color, size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def png_header_only(width, height) -> bytes:
    """A PNG that declares width x height pixels in a few dozen bytes."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


RED, GREEN = jpeg((220, 30, 30)), jpeg((30, 200, 40))


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_module):
    """Two tiny models trained on colour folders, models/latest -> the second."""
    tmp = tmp_path_factory.mktemp("served")
    images = make_tags(tmp / "hashtags", per_tag=25)
    runs = []
    for name in ("first", "second"):
        runs.append(
            train(
                TrainConfig(
                    image_dir=str(images),
                    backbone=str(tiny_module),
                    learning_rate=0.01,
                    bottleneck_dir=str(tmp / "b"),
                    runs_dir=str(tmp / "runs"),
                    models_dir=str(tmp / "models"),
                    run_name=name,
                ),
                progress=False,
            )
        )
    return tmp, images, runs


@pytest.fixture(scope="module")
def image_server():
    with LoopbackServer() as site:
        site.routes.update(
            {
                "/red.jpg": respond(RED),
                "/big.jpg": stream(RED[:4], megabytes=21),
                "/to-private": redirect(f"http://127.0.0.1:{site.port}/red.jpg"),
                "/page.html": respond(b"<html>no</html>", "text/html"),
                "/slow.jpg": slow(RED),
            }
        )
        yield site


def make_client(models, **overrides):
    tmp, images, _ = models
    config = ServiceConfig(
        model_dir=str(tmp / "models" / "latest"),
        image_dir=str(images),
        fetch=FetchPolicy(allow_hosts=frozenset({"localhost"}), read_timeout=1.0),
        max_upload_bytes=20 * 2**20,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    app = create_app(config)
    return app, app.test_client()


@pytest.fixture(scope="module")
def api(models):
    return make_client(models)


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert "Traceback" not in body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body


def test_the_original_curl_call_answers_json(api, image_server):
    app, client = api
    response = client.get("/", query_string={"picture": image_server.url + "/red.jpg"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == "second"
    assert body["predictions"][0]["hashtag"] == "red"
    assert len(body["predictions"]) == 3 and body["timing"]["total_ms"] > 0
    top1 = client.get("/", query_string={"picture": image_server.url + "/red.jpg", "top": 1})
    assert len(top1.get_json()["predictions"]) == 1


@pytest.mark.parametrize(
    "picture, status, code",
    [
        ("http://127.0.0.1/", 400, "forbidden_address"),
        ("http://169.254.169.254/", 400, "forbidden_address"),
        ("file:///etc/passwd", 400, "bad_url"),
        ("/to-private", 400, "forbidden_address"),
        ("/slow.jpg", 504, "upstream_timeout"),
        ("/big.jpg", 413, "too_large"),
        ("/page.html", 415, "not_an_image"),
        ("/nothing-here.jpg", 502, "upstream_error"),
    ],
)
def test_bad_picture_urls_get_clear_errors(api, image_server, picture, status, code):
    _, client = api
    url = image_server.url + picture if picture.startswith("/") else picture
    assert_error(client.get("/", query_string={"picture": url}), status, code)


def test_missing_picture_and_bad_top_are_bad_requests(api, image_server):
    _, client = api
    assert_error(client.get("/"), 400, "missing_picture")
    assert_error(
        client.get("/", query_string={"picture": image_server.url + "/red.jpg", "top": "lots"}),
        400,
        "bad_top",
    )


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"", 400, "empty"),
        (png_header_only(30000, 30000), 413, "too_many_pixels"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', 415, "not_an_image"),
        (b"<!doctype html><html></html>", 415, "not_an_image"),
        (RED[: len(RED) // 2], 422, "undecodable"),
    ],
)
def test_bad_uploads_get_clear_errors(api, body, status, code):
    _, client = api
    assert_error(client.post("/predict", data=body, content_type="image/jpeg"), status, code)
    files = {"image": (io.BytesIO(body), "upload.jpg")}
    assert_error(
        client.post("/predict", data=files, content_type="multipart/form-data"), status, code
    )


def test_an_upload_over_20_mb_is_refused(api):
    _, client = api
    assert_error(
        client.post("/predict", data=RED + b"\0" * (20 * 2**20), content_type="image/jpeg"),
        413,
        "too_large",
    )


def test_raw_body_multipart_batch_and_json_url(api, image_server):
    _, client = api
    raw = client.post("/predict", data=GREEN, content_type="image/jpeg").get_json()
    assert raw["predictions"][0]["hashtag"] == "green"
    files = [(io.BytesIO(RED), "a.jpg"), (io.BytesIO(GREEN), "b.jpg"), (io.BytesIO(b"x"), "c.jpg")]
    batch = client.post("/predict", data={"image": files}, content_type="multipart/form-data")
    assert batch.status_code == 200
    results = batch.get_json()["results"]
    assert [r["source"] for r in results] == ["a.jpg", "b.jpg", "c.jpg"]
    assert results[0]["predictions"][0]["hashtag"] == "red"
    assert results[1]["predictions"][0]["hashtag"] == "green"
    assert results[2]["error"]["code"] == "not_an_image"
    by_url = client.post("/predict", json={"url": image_server.url + "/red.jpg"}).get_json()
    assert by_url["predictions"][0]["hashtag"] == "red"
    urls = client.post(
        "/predict", json={"urls": [image_server.url + "/red.jpg", "http://10.0.0.1/x.jpg"]}
    ).get_json()
    assert urls["results"][1]["error"]["code"] == "forbidden_address"
    assert_error(client.post("/predict", json={"link": "x"}), 400, "bad_json")


def test_info_endpoints_and_unknown_routes(api):
    _, client = api
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["model"] == "second"
    assert client.get("/labels").get_json()["labels"] == ["blue", "green", "red"]
    assert client.get("/model").get_json()["test_accuracy"] is not None
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.delete("/predict"), 405, "method_not_allowed")


def test_no_model_means_503_not_a_crash(tmp_path):
    app = create_app(ServiceConfig(model_dir=str(tmp_path / "missing")))
    client = app.test_client()
    assert_error(client.get("/healthz"), 503, "no_model")
    assert_error(client.post("/predict", data=RED, content_type="image/jpeg"), 503, "no_model")


def test_concurrent_requests_share_model_calls(models):
    app, client = make_client(models, batch_wait_seconds=0.05)
    batcher = app.extensions["hashtag"]["batcher"]
    before = batcher.batches
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: client.post("/predict", data=RED, content_type="image/jpeg"), range(24)
            )
        )
    assert all(a.status_code == 200 for a in answers)
    assert batcher.batches - before < 24, "no two requests were predicted together"


def test_reload_under_load_loses_no_request(models):
    tmp, _, runs = models
    app, client = make_client(models)
    statuses, seen_models, stop = [], set(), threading.Event()

    def hammer():
        while not stop.is_set():
            r = client.post("/predict", data=GREEN, content_type="image/jpeg")
            statuses.append(r.status_code)
            seen_models.add(r.get_json().get("model"))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        for target in ("first", "second", "first"):
            point_symlink(tmp / "models" / "latest", target)
            time.sleep(0.2)
            assert client.post("/reload").get_json()["model"] == target
        time.sleep(0.2)
    finally:
        stop.set()
        for w in workers:
            w.join()
        point_symlink(tmp / "models" / "latest", "second")
    assert len(statuses) > 20 and set(statuses) == {200}
    assert seen_models == {"first", "second"}


def test_train_endpoint_needs_a_configured_token(models, tiny_module):
    _, client = make_client(models)
    assert_error(client.post("/train"), 403, "disabled")

    app, client = make_client(
        models,
        train_token="s3cret",
        train_overrides={"backbone": str(tiny_module), "learning_rate": 0.01},
    )
    assert_error(client.post("/train"), 401, "bad_token")
    assert_error(client.post("/train", headers={"Authorization": "Bearer wrong"}), 401)
    auth = {"Authorization": "Bearer s3cret"}
    assert_error(client.post("/train", json={"rm -rf": 1}, headers=auth), 400, "bad_settings")
    try:
        started = client.post("/train", json={"epochs": 30}, headers=auth)
        assert started.status_code == 202
        job = started.get_json()["id"]
        assert_error(client.post("/train", headers=auth), 409, "training_in_progress")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/train/{job}", headers=auth).get_json()
            if status["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        assert status["status"] == "succeeded", status
        assert status["progress"]["epoch"] >= 1 and status["test_accuracy"] is not None
        assert client.get("/healthz").get_json()["model"] == Path(status["model"]).name
    finally:  # the job published its model as models/latest; put the fixture's back
        point_symlink(models[0] / "models" / "latest", "second")
    assert_error(client.get("/train/unknown", headers=auth), 404, "no_such_job")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        st.binary(max_size=2048),
        st.binary(max_size=512).map(lambda b: RED[:200] + b),
        st.binary(max_size=512).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    ),
    ctype=st.sampled_from(["image/jpeg", "application/octet-stream", "text/plain"]),
)
def test_random_bytes_never_cause_a_server_error(api, body, ctype):
    _, client = api
    response = client.post("/predict", data=body, content_type=ctype)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_sh_serves_the_original_curl_with_efficientnet_lite0(sample_model, image_server):
    images, model_dir = sample_model
    snow = (images / "snow" / "snow_000.jpg").read_bytes()
    image_server.routes["/snow.jpg"] = respond(snow)
    port = _free_port()
    env = {
        **os.environ,
        "HASHTAG_MODEL": str(model_dir),
        "HASHTAG_ALLOW_HOSTS": "localhost",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:" + os.environ.get("PATH", ""),
    }
    server = subprocess.Popen([str(REPO / "app.sh")], env=env, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.3)
        query = urllib.parse.urlencode({"picture": image_server.url + "/snow.jpg"})
        with urllib.request.urlopen(f"{base}/?{query}", timeout=30) as answer:
            body = json.loads(answer.read())
        assert body["predictions"][0]["hashtag"] == "snow"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/?picture=http://169.254.169.254/", timeout=30)
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["error"]["code"] == "forbidden_address"
    finally:
        server.terminate()
        logs = server.communicate(timeout=30)[1]
    access = [
        json.loads(line[line.index("{") :])
        for line in logs.splitlines()
        if "hashtag.access" in line
    ]
    assert any(entry["status"] == 400 for entry in access), logs[-2000:]


def test_uploads_do_not_write_client_named_files(api, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, client = api
    files = {"image": (io.BytesIO(RED), "../../etc/evil.jpg")}
    assert (
        client.post("/predict", data=files, content_type="multipart/form-data").status_code == 200
    )
    assert list(tmp_path.iterdir()) == []
