"""One servable SavedModel per run: encoded image bytes in, hashtag probabilities out.

``models/<run>/`` holds the SavedModel (backbone and head together) at its
root, so ``tf.saved_model.load("models/<run>")`` and TensorFlow Serving both
work unchanged, plus ``labels.txt``, ``metrics.json``, ``config.json`` and
``MODEL_CARD.md``. Signatures:

* ``serving_default(image_bytes: string[N]) -> {"probabilities": float[N, K]}``,
  decoding and resizing inside the graph (no EXIF rotation: TF cannot).
* ``predict_images(images: float[N, S, S, 3] in [0, 1]) -> {"probabilities"}``,
  used by :class:`helpers.predict.Predictor`, which decodes with Pillow first.

Everything is written into a hidden temporary folder and renamed when
complete; ``models/latest`` is a symlink moved atomically to the newest run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from helpers.atomic import atomic_directory, point_symlink

LATEST = "latest"
METRICS = "metrics.json"


class MetricsError(ValueError):
    """A model folder whose metrics.json is missing or unreadable."""


def read_metrics(model_dir: str | Path) -> dict:
    """The parsed ``metrics.json`` of a model folder (MetricsError when absent or broken)."""
    path = Path(model_dir) / METRICS
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise MetricsError(
            f"{path} does not exist: is {model_dir} a model folder written by 'hashtag train'?"
        ) from None
    except (OSError, ValueError) as exc:
        raise MetricsError(f"cannot read {path}: {exc}") from None
    if not isinstance(metrics, dict):
        raise MetricsError(f"{path} does not hold a JSON object")
    return metrics


def _serving_module(loaded, kernel, bias):
    from helpers.backbones import has_training_arg
    from helpers.tf import tf

    size = loaded.backbone.require_input_size()
    module = tf.__internal__.tracking.AutoTrackable()
    module.backbone = loaded.module
    module.head_kernel = tf.Variable(kernel, trainable=False, name="head_kernel")
    module.head_bias = tf.Variable(bias, trainable=False, name="head_bias")
    training_arg = has_training_arg(loaded.module)

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
    def predict_images(images):
        features = (
            module.backbone(images, training=False) if training_arg else module.backbone(images)
        )
        logits = tf.matmul(features, module.head_kernel) + module.head_bias
        return {"probabilities": tf.nn.softmax(logits)}

    def decode_one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.image.resize(image[None], (size, size), antialias=True)[0]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes):
        images = tf.map_fn(
            decode_one, image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32)
        )
        return predict_images(images)

    module.predict_images = predict_images
    module.serve_bytes = serve_bytes
    return module


def _model_card(metrics: dict) -> str:
    acc = metrics.get("test_accuracy")
    lines = [
        f"# Hashtag classifier `{metrics['run']}`",
        "",
        f"Predicts one of {len(metrics['labels'])} hashtags: "
        + ", ".join(f"#{label}" for label in metrics["labels"])
        + ".",
        "",
        f"- Backbone: `{metrics['backbone']}` ({metrics['input_size']}x{metrics['input_size']} "
        "input), pretrained on ImageNet; a softmax head trained on hashtag folders.",
        f"- Data: {metrics['counts']['train']} training, {metrics['counts']['validation']} "
        f"validation, {metrics['counts']['test']} test images (split by content hash).",
        f"- Test accuracy: {acc:.3f}" if acc is not None else "- Test accuracy: no test images",
        f"- Trained: {metrics['created']}, {metrics['duration_seconds']} s.",
        "",
        "Limits: hashtags are noisy labels chosen by posters, not by annotators; the model only",
        "knows these hashtags and always answers one of them, even for an unrelated picture.",
        "Use it to explore, not to judge people or their posts.",
        "",
        "Files: SavedModel here (`serving_default`: encoded image bytes -> probabilities),",
        "`labels.txt` (one hashtag per line, in output order), `metrics.json`, `config.json`.",
    ]
    return "\n".join(lines) + "\n"


def export_model(
    loaded, kernel, bias, labels: list[str], target: Path, metrics: dict, config
) -> Path:
    """Write the SavedModel and its side files into ``target`` atomically."""
    from helpers.tf import tf

    target = Path(target)
    module = _serving_module(loaded, kernel, bias)
    with atomic_directory(target) as tmp:
        tf.saved_model.save(
            module,
            str(tmp),
            signatures={
                "serving_default": module.serve_bytes,
                "predict_images": module.predict_images,
            },
        )
        (tmp / "labels.txt").write_text("\n".join(labels) + "\n")
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2))
        (tmp / "config.json").write_text(
            json.dumps(
                {
                    "backbone": loaded.backbone.name,
                    "input_size": loaded.backbone.input_size,
                    "labels": labels,
                    "train_config": dataclasses.asdict(config),
                },
                indent=2,
            )
        )
        (tmp / "MODEL_CARD.md").write_text(_model_card(metrics))
    return target


def publish(model_dir: Path) -> Path:
    """Point ``<models>/latest`` at ``model_dir`` (a sibling folder), atomically."""
    model_dir = Path(model_dir)
    link = model_dir.parent / LATEST
    point_symlink(link, model_dir.name)
    return link
