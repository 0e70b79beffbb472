"""Image files -> feature vectors, through a parallel tf.data pipeline.

Files are read and decoded by :mod:`helpers.images` on tf.data's worker threads
(Pillow releases the GIL while decoding), resized by the backbone's own rule,
batched, and fed to the backbone while the next batch is being decoded. A file
that cannot be decoded is skipped and reported; it never stops the run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.backbones import DEFAULT_BACKBONE, LoadedBackbone, load_backbone
from helpers.images import ImageError, read_image

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32


@dataclass
class FeatureSet:
    """Feature vectors for the images that decoded, and why the others did not."""

    features: np.ndarray  # (N, D) float32
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    backbone: str = ""
    seconds: float = 0.0

    def save(self, path: str | Path) -> Path:
        """Write ``features``, ``paths`` and ``backbone`` to an .npz file atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                features=self.features,
                paths=np.array(self.paths, dtype=str),
                backbone=np.array(self.backbone),
            )
        tmp.replace(path)
        return path


def _decode_for_pipeline(path: bytes, size: int):
    """numpy_function body: (image, b"") on success, (black image, reason) on failure."""
    try:
        return read_image(path.decode(), size=int(size)), b""
    except ImageError as exc:
        return np.zeros((size, size, 3), np.uint8), str(exc).encode()


def decoded_images(paths: Sequence[str], size: int):
    """An unbatched tf.data pipeline of (image float32 [0,1] size x size x 3, error message)."""
    from helpers.tf import tf

    def load(path):
        image, error = tf.numpy_function(
            _decode_for_pipeline, [path, size], [tf.uint8, tf.string], stateful=False
        )
        image.set_shape([size, size, 3])
        error.set_shape([])
        return tf.image.convert_image_dtype(image, tf.float32), error

    # As many decoders as cores, no more: the network already keeps every core
    # busy, and extra decoder threads only pre-empt its synchronised kernels
    # (measured: AUTOTUNE's wider pool was slower here, not faster).
    workers = os.cpu_count() or 1
    options = tf.data.Options()
    options.threading.private_threadpool_size = workers
    return (
        tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
        .map(load, num_parallel_calls=workers, deterministic=True)
        .with_options(options)
    )


def image_dataset(paths: Sequence[str], backbone, batch_size: int = DEFAULT_BATCH_SIZE):
    """Batches of (preprocessed images, error messages) ready for the backbone."""
    return decoded_images(paths, backbone.require_input_size()).batch(batch_size).prefetch(2)


def extract_features(
    paths: Sequence[str | Path],
    backbone: str | LoadedBackbone = DEFAULT_BACKBONE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> FeatureSet:
    """Embed image files with a backbone.

    Args:
        paths: image files, in the order wanted in the result.
        backbone: a backbone name/handle, or an already loaded backbone.
        batch_size: images per call of the network.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`FeatureSet`; undecodable files are listed in ``skipped``.
    """
    from tqdm.auto import tqdm

    from helpers.tf import tf

    loaded = backbone if isinstance(backbone, LoadedBackbone) else load_backbone(backbone)
    paths = [str(p) for p in paths]
    started = time.perf_counter()
    chunks, kept, skipped = [], [], []
    position = 0
    with tqdm(
        total=len(paths),
        unit="img",
        desc=f"features ({loaded.backbone.name})",
        disable=not progress,
    ) as bar:
        for images, errors in image_dataset(paths, loaded.backbone, batch_size):
            errors = errors.numpy()
            ok = errors == b""
            batch_paths = paths[position : position + len(errors)]
            position += len(errors)
            for p, reason in zip(batch_paths, errors):
                if reason:
                    skipped.append((p, reason.decode()))
                    log.warning("skipped %s: %s", p, reason.decode())
            if ok.any():
                chunks.append(loaded.features(tf.boolean_mask(images, ok)).numpy())
                kept.extend(p for p, good in zip(batch_paths, ok) if good)
            bar.update(len(errors))
    dim = chunks[0].shape[1] if chunks else (loaded.backbone.feature_dim or 0)
    features = (
        np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, dim), np.float32)
    )
    return FeatureSet(features, kept, skipped, loaded.backbone.name, time.perf_counter() - started)
