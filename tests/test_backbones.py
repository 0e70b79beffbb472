import json
import tarfile
from dataclasses import replace

import numpy as np
import pytest

from helpers import backbones
from helpers.backbones import BackboneError, get_backbone, load_backbone, save_feature_module
from helpers.features import extract_features
from tests.conftest import save_tiny_module, write_image


def test_builtin_backbones_are_listed():
    assert {"efficientnet_lite0", "inception_v3", "mobilenet_v3_large", "mobilenet_v2"} <= set(
        backbones.BUILTIN
    )
    assert get_backbone().name == "efficientnet_lite0"
    assert get_backbone("inception_v3").input_size == 299
    assert get_backbone("inception_v3").handle.startswith("https://tfhub.dev/")


def test_unknown_backbone_names_the_choices():
    with pytest.raises(BackboneError, match="efficientnet_lite0"):
        get_backbone("resnet9000")


def test_efficientnet_is_built_once_then_loaded_from_the_cache(lite0):
    meta = lite0.path / backbones.META_FILE
    assert lite0.path.parent.parent == backbones.cache_dir()
    stamp = meta.stat().st_mtime_ns
    again = load_backbone("efficientnet_lite0")
    assert again.path == lite0.path
    assert meta.stat().st_mtime_ns == stamp, "the cached module was rebuilt"
    assert json.loads(meta.read_text())["format"] == backbones.MODULE_FORMAT


def test_a_stale_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHTAG_CACHE_DIR", str(tmp_path))
    tiny = replace(
        get_backbone(), name="tiny", input_size=32, builder=lambda: _tiny_two_output_model()
    )
    path = backbones.module_path(tiny)
    (path / backbones.META_FILE).write_text('{"format": -1}')
    backbones.module_path(tiny)
    assert json.loads((path / backbones.META_FILE).read_text())["format"] == backbones.MODULE_FORMAT


def _tiny_two_output_model():
    from helpers.tf import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, [features, keras.layers.Dense(2)(features)])


def test_hub_module_by_url_then_from_cache_with_the_server_gone(tmp_path, file_server, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub-cache"))
    module = save_tiny_module(tmp_path / "module")
    site = tmp_path / "site"
    site.mkdir()
    with tarfile.open(site / "tiny.tar.gz", "w:gz") as tar:
        for item in module.iterdir():
            tar.add(item, arcname=item.name)
    url = file_server(site) + "/tiny.tar.gz"

    first = load_backbone(url)
    assert first.backbone.input_size == 32, "input size is read from the module"
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    expected = first.features(images).numpy()
    assert expected.shape == (2, 8)

    file_server.stop()
    second = load_backbone(url)
    assert second.path == first.path
    np.testing.assert_allclose(second.features(images).numpy(), expected, rtol=1e-6)


def test_unreachable_module_says_why_and_names_the_offline_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    unreachable = replace(
        get_backbone("inception_v3"), handle="http://127.0.0.1:9/inception_v3.tar.gz"
    )
    with pytest.raises(BackboneError) as err:
        load_backbone(unreachable)
    message = str(err.value)
    assert "inception_v3" in message and "efficientnet_lite0" in message
    assert "Connection refused" in message or "URLError" in message


def test_local_folder_without_declared_size_needs_the_flag(tmp_path):
    from helpers.tf import tf

    # a module whose signature leaves height and width open
    module = tf.__internal__.tracking.AutoTrackable()
    module.__call__ = tf.function(
        lambda images: tf.reduce_mean(images, axis=[1, 2]),
        input_signature=[tf.TensorSpec([None, None, None, 3])],
    )
    tf.saved_model.save(module, str(tmp_path / "dynamic"))
    loaded = load_backbone(str(tmp_path / "dynamic"))
    with pytest.raises(BackboneError, match="--input_size"):
        loaded.backbone.require_input_size()
    sized = load_backbone(str(tmp_path / "dynamic"), input_size=48)
    assert sized.backbone.input_size == 48


def test_inception_v3_architecture_runs_through_the_same_code_at_299(tmp_path):
    from helpers.tf import keras

    inputs = keras.Input((299, 299, 3))
    scaled = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0,1] -> Inception's [-1,1]
    net = keras.applications.InceptionV3(
        weights=None, include_top=False, pooling="avg", input_tensor=scaled
    )
    save_feature_module(keras.Model(inputs, net.output), tmp_path / "inception")

    folder = tmp_path / "photos"
    for i, color in enumerate([(250, 120, 0), (0, 90, 200), (30, 160, 40)]):
        write_image(folder / f"{i}.jpg", color, size=(320, 240))
    loaded = load_backbone(str(tmp_path / "inception"))
    assert loaded.backbone.input_size == 299
    result = extract_features(sorted(folder.iterdir()), loaded, batch_size=2, progress=False)
    assert result.features.shape == (3, 2048)
    assert np.isfinite(result.features).all()
