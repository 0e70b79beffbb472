"""End to end: images -> trained, exported model -> predictions, on tiny stand-ins and real photos."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.bottlenecks import BottleneckCache, cached_features
from helpers.dataset import scan
from helpers.predict import Predictor
from helpers.train import TrainConfig, train
from tests.test_dataset import make_tags

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path, images, backbone, **overrides):
    return TrainConfig(
        image_dir=str(images),
        backbone=str(backbone),
        bottleneck_dir=str(tmp_path / "bottlenecks"),
        runs_dir=str(tmp_path / "runs"),
        models_dir=str(tmp_path / "models"),
        learning_rate=0.01,
        **overrides,
    )


@pytest.fixture(scope="module")
def colour_images(tmp_path_factory):
    return make_tags(tmp_path_factory.mktemp("hashtags"), per_tag=30)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, colour_images, tiny_module):
    tmp = tmp_path_factory.mktemp("run")
    return tmp, train(_config(tmp, colour_images, tiny_module), progress=False)


def test_end_to_end_on_solid_colours(trained):
    tmp, result = trained
    assert result.metrics["test_accuracy"] >= 0.9
    assert result.features_computed == 90
    files = {p.name for p in result.model_dir.iterdir()}
    assert {
        "saved_model.pb",
        "variables",
        "labels.txt",
        "metrics.json",
        "config.json",
        "MODEL_CARD.md",
    } <= files
    assert (result.model_dir.parent / "latest").resolve() == result.model_dir.resolve()
    metrics = json.loads((result.model_dir / "metrics.json").read_text())
    assert metrics["labels"] == ["blue", "green", "red"]
    assert set(metrics["per_class"]) == {"blue", "green", "red"}
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["counts"]["test"]
    assert metrics["hyperparameters"]["learning_rate"] == 0.01
    assert metrics["duration_seconds"] > 0
    assert "Test accuracy" in (result.model_dir / "MODEL_CARD.md").read_text()


def test_tensorboard_logs_curves_learning_rate_and_hparams(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, result = trained
    train_events = EventAccumulator(
        str(result.run_dir / "train"), size_guidance={"tensors": 0}
    ).Reload()  # 0: keep every event
    tags = train_events.Tags()["tensors"]
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(tags)
    assert len(train_events.Tensors("epoch_loss")) == result.metrics["epochs_trained"]
    assert (
        "epoch_loss"
        in EventAccumulator(str(result.run_dir / "validation")).Reload().Tags()["tensors"]
    )
    top = EventAccumulator(str(result.run_dir)).Reload()
    assert "_hparams_/session_start_info" in top.Tags()["tensors"]


def test_serving_signature_takes_jpeg_bytes_and_agrees_with_the_predictor(trained, colour_images):
    from helpers.tf import tf

    _, result = trained
    blobs = [p.read_bytes() for p in sorted((colour_images / "green").iterdir())[:4]]
    serving = tf.saved_model.load(str(result.model_dir)).signatures["serving_default"]
    served = serving(image_bytes=tf.constant(blobs))["probabilities"].numpy()
    predictor = Predictor(result.model_dir)
    local = predictor.predict_bytes(blobs)
    assert served.shape == local.shape == (4, 3)
    np.testing.assert_allclose(served, local, atol=0.02)
    assert [predictor.top_k(p, 1)[0][0] for p in local] == ["green"] * 4


def test_second_run_extracts_nothing_and_damaged_cache_is_recomputed(
    trained, colour_images, tiny_module
):
    tmp, first = trained
    again = train(_config(tmp, colour_images, tiny_module, run_name="again"), progress=False)
    assert again.features_computed == 0
    assert again.metrics["test_accuracy"] == pytest.approx(first.metrics["test_accuracy"])

    from helpers.backbones import get_backbone, load_backbone

    cache = BottleneckCache.for_backbone(get_backbone(str(tiny_module)), tmp / "bottlenecks")
    items = scan(colour_images).items
    victim = cache._path(items[0].digest)
    victim.write_bytes(b"damaged")
    cache._path(items[1].digest).write_bytes(np.lib.format.magic(1, 0) + b"garbage")
    result = cached_features(items, cache, lambda: load_backbone(str(tiny_module)), progress=False)
    assert result.computed == 2 and len(result.kept) == len(items)
    assert cache.get(items[0].digest).shape == (8,)


def test_a_killed_run_leaves_no_model_folder(tmp_path, colour_images, tiny_module):
    models = tmp_path / "models"
    code = (
        "from helpers.train import TrainConfig, train; "
        f"train(TrainConfig(image_dir={str(colour_images)!r}, backbone={str(tiny_module)!r}, "
        f"models_dir={str(models)!r}, runs_dir={str(tmp_path / 'runs')!r}, "
        f"bottleneck_dir={str(tmp_path / 'b')!r}, run_name='killed'), progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if models.is_dir() and any(p.name.startswith(".killed.tmp-") for p in models.iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (models / "killed").exists()
    assert not (models / "latest").exists()


def test_retrain_py_accepts_the_original_flags(tmp_path, colour_images, tiny_module):
    help_text = subprocess.run(
        [sys.executable, str(REPO / "retrain.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in (
        "--image_dir",
        "--tfhub_module",
        "--how_many_training_steps",
        "--learning_rate",
        "--testing_percentage",
        "--validation_percentage",
        "--train_batch_size",
        "--bottleneck_dir",
        "--summaries_dir",
        "--saved_model_dir",
        "--output_labels",
        "--print_misclassified_test_images",
        "--flip_left_right",
        "--random_crop",
        "--random_scale",
        "--random_brightness",
    ):
        assert flag in help_text, flag
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "retrain.py"),
            "--image_dir",
            str(colour_images),
            "--tfhub_module",
            str(tiny_module),
            "--how_many_training_steps",
            "300",
            "--bottleneck_dir",
            str(tmp_path / "b"),
            "--summaries_dir",
            str(tmp_path / "runs"),
            "--saved_model_dir",
            str(tmp_path / "exported"),
            "--output_labels",
            str(tmp_path / "labels.txt"),
            "--print_misclassified_test_images",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert "final test accuracy" in done.stdout and "misclassified test images" in done.stdout
    assert (tmp_path / "exported" / "saved_model.pb").exists()
    assert (tmp_path / "labels.txt").read_text().split() == ["blue", "green", "red"]


def test_predict_command_prints_json(trained, colour_images, capsys):
    from helpers.cli import main

    _, result = trained
    image = sorted((colour_images / "blue").iterdir())[0]
    assert (
        main(["predict", "--model", str(result.model_dir), "--json", "--top", "2", str(image)]) == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer["predictions"][0]["hashtag"] == "blue" and len(answer["predictions"]) == 2


def test_augment_and_fine_tune_train_through_the_backbone(tmp_path, colour_images, tiny_module):
    result = train(
        _config(
            tmp_path,
            colour_images,
            tiny_module,
            augment=True,
            fine_tune=True,
            backbone_epochs=2,
            fine_tune_learning_rate=1e-3,
        ),
        progress=False,
    )
    assert result.metrics["epochs_trained"] >= 2
    assert result.metrics["test_accuracy"] >= 0.6
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    backbone_tags = EventAccumulator(str(result.run_dir / "backbone" / "train")).Reload().Tags()
    assert {"epoch_loss", "epoch_learning_rate"} <= set(backbone_tags["tensors"])
    assert (result.model_dir / "saved_model.pb").exists()


def test_real_photos_with_efficientnet_lite0(tmp_path, shared_photos, lite0):
    result = train(
        TrainConfig(
            image_dir=str(shared_photos),
            runs_dir=str(tmp_path / "runs"),
            models_dir=str(tmp_path / "models"),
        ),
        progress=False,
    )
    assert result.metrics["test_accuracy"] >= 0.9, result.metrics
    assert result.metrics["counts"]["test"] >= 15
