"""Shared fixtures: an isolated cache, tiny stand-in modules, the real photo set."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "clothing-cc0"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Build backbones into a per-session cache, so tests never read ~/.cache."""
    if "HASHTAG_TEST_CACHE_DIR" in os.environ:  # reuse a warm cache between local runs
        cache = Path(os.environ["HASHTAG_TEST_CACHE_DIR"])
    else:
        cache = tmp_path_factory.mktemp("hashtag-cache")
    old = {k: os.environ.get(k) for k in ("HASHTAG_CACHE_DIR", "TFHUB_CACHE_DIR")}
    os.environ["HASHTAG_CACHE_DIR"] = str(cache)
    os.environ["TFHUB_CACHE_DIR"] = str(cache / "tfhub")
    yield cache
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def lite0():
    """The real, pretrained EfficientNet-Lite0 (built once per session)."""
    from helpers.backbones import load_backbone

    return load_backbone("efficientnet_lite0")


def save_tiny_module(path: Path, size: int = 32) -> Path:
    """A small feature-vector module: images in [0,1] -> 8 mean-colour statistics."""
    from helpers.backbones import save_feature_module
    from helpers.tf import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(
        8,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=0),
    )(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    save_feature_module(model, path)
    return path


@pytest.fixture(scope="session")
def tiny_module(tmp_path_factory) -> Path:
    return save_tiny_module(tmp_path_factory.mktemp("tiny") / "module")


@pytest.fixture(scope="session")
def shared_photos() -> Path:
    if not SHARED_PHOTOS.is_dir():
        pytest.skip(
            f"real photo set not found at {SHARED_PHOTOS} (it lives in ../shared "
            "beside the project, not in the repository)"
        )
    return SHARED_PHOTOS


def write_image(path: Path, color=(200, 40, 40), size=(40, 30), fmt=None, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt, **save)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    """Serve a folder over loopback HTTP; yields start(folder) -> base URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop():
        while servers:
            server = servers.pop()
            server.shutdown()
            server.server_close()

    start.stop = stop
    yield start
    stop()


def cosine(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="session")
def sample_model(tmp_path_factory, lite0):
    """A real model: EfficientNet-Lite0 + head trained on three synthetic sample hashtags."""
    from helpers.sample import generate_sample
    from helpers.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("sample-model")
    generate_sample(tmp / "hashtags", per_tag=12, tags=("sunset", "forest", "snow"))
    result = train(
        TrainConfig(
            image_dir=str(tmp / "hashtags"),
            runs_dir=str(tmp / "runs"),
            models_dir=str(tmp / "models"),
        ),
        progress=False,
    )
    return tmp / "hashtags", result.model_dir
