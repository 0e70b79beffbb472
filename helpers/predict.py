"""Load an exported model once and ask it which hashtag a picture belongs to.

The CLI, the API, the dashboard and the notebooks all use :class:`Predictor`.
Images are decoded by :mod:`helpers.images` (EXIF rotation, CMYK, 16-bit...)
and passed to the model's ``predict_images`` signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.images import decode_image

DEFAULT_MODEL = Path("models") / "latest"


class ModelError(RuntimeError):
    """No usable model at the given place."""


@dataclass
class Prediction:
    source: str
    top: list[tuple[str, float]]  # (hashtag, probability), most likely first
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error:
            return {"source": self.source, "error": self.error}
        return {
            "source": self.source,
            "predictions": [{"hashtag": h, "probability": round(p, 6)} for h, p in self.top],
        }


class Predictor:
    """A loaded model: ``predict_bytes``, ``predict_arrays``, ``top_k``."""

    def __init__(self, model_dir: str | Path = DEFAULT_MODEL):
        from helpers.tf import tf

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "saved_model.pb").exists():
            raise ModelError(
                f"no model at {self.model_dir}: train one with 'hashtag train' "
                "(or 'python retrain.py --image_dir ./hashtags/')"
            )
        self.model_id = self.model_dir.resolve().name
        self.labels = (self.model_dir / "labels.txt").read_text().splitlines()
        config = json.loads((self.model_dir / "config.json").read_text())
        self.input_size = int(config["input_size"])
        self.backbone = config["backbone"]
        self._model = tf.saved_model.load(str(self.model_dir))
        self._predict = self._model.signatures["predict_images"]

    def predict_arrays(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, K) for uint8 images already size x size x 3."""
        from helpers.tf import tf

        batch = tf.image.convert_image_dtype(tf.constant(images, tf.uint8), tf.float32)
        return self._predict(images=batch)["probabilities"].numpy()

    def predict_bytes(self, blobs: list[bytes]) -> np.ndarray:
        """Probabilities (N, K) for encoded images; raises ImageError on a bad one."""
        return self.predict_arrays(np.stack([decode_image(b, size=self.input_size) for b in blobs]))

    def top_k(self, probabilities: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-probabilities)[:k]
        return [(self.labels[i], float(probabilities[i])) for i in order]
