"""The bottleneck cache: one feature vector per (backbone, image content hash).

A second training run on the same images extracts nothing. Each vector is a
small .npy file written atomically; a file that is unreadable, of the wrong
shape or not finite is treated as missing and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.atomic import write_bytes_atomic
from helpers.backbones import Backbone, cache_dir

log = logging.getLogger(__name__)


def default_dir() -> Path:
    return cache_dir() / "bottlenecks"


def backbone_key(backbone: Backbone) -> str:
    """A folder name unique to a backbone and its input size."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", backbone.name)[-60:].strip("_")
    if backbone.handle:
        name += "-" + hashlib.sha256(backbone.handle.encode()).hexdigest()[:10]
    return f"{name}-{backbone.input_size}"


@dataclass
class BottleneckCache:
    root: Path  # folder of one backbone's vectors

    @classmethod
    def for_backbone(cls, backbone: Backbone, bottleneck_dir: str | Path | None = None):
        return cls(Path(bottleneck_dir or default_dir()) / backbone_key(backbone))

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, digest: str, dim: int | None = None) -> np.ndarray | None:
        """The cached vector, or None if absent or damaged."""
        path = self._path(digest)
        try:
            vector = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as exc:
            log.warning("damaged bottleneck %s (%s): recomputing", path, exc)
            return None
        if vector.ndim != 1 or (dim and vector.shape[0] != dim) or not np.isfinite(vector).all():
            log.warning("damaged bottleneck %s (shape %s): recomputing", path, vector.shape)
            return None
        return vector.astype(np.float32, copy=False)

    def put(self, digest: str, vector: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(vector, np.float32), allow_pickle=False)
        write_bytes_atomic(self._path(digest), buf.getvalue())

    def known_digests(self) -> set[str]:
        """Content hashes that have a cached vector (decoded fine once)."""
        if not self.root.is_dir():
            return set()
        return {p.stem for p in self.root.glob("*/*.npy")}


@dataclass
class CachedFeatures:
    features: np.ndarray  # (N, D): one row per item in ``kept``
    kept: list  # the items that have a vector, in the order asked for
    computed: int  # how many vectors were extracted now (0 on a warm run)
    failed: list[tuple[str, str]]  # (path, reason) for items that could not be decoded


def cached_features(
    items: Sequence,
    cache: BottleneckCache,
    load_backbone_fn,
    batch_size: int = 32,
    progress: bool = True,
) -> CachedFeatures:
    """Features for ``items`` (objects with .path and .digest), extracting only cache misses.

    ``load_backbone_fn()`` is called only if something must be extracted, so a
    warm run never loads the network.
    """
    from helpers.features import extract_features

    vectors = {item.digest: cache.get(item.digest) for item in items}
    missing: dict[str, str] = {}
    for item in items:
        if vectors[item.digest] is None:
            missing.setdefault(item.digest, item.path)
    failed: list[tuple[str, str]] = []
    computed = 0
    if missing:
        result = extract_features(
            list(missing.values()), load_backbone_fn(), batch_size=batch_size, progress=progress
        )
        digest_of = {path: digest for digest, path in missing.items()}
        for path, vector in zip(result.paths, result.features):
            vectors[digest_of[path]] = vector
            cache.put(digest_of[path], vector)
        computed, failed = len(result.paths), result.skipped
    kept = [item for item in items if vectors[item.digest] is not None]
    dim = len(vectors[kept[0].digest]) if kept else 0
    features = (
        np.stack([vectors[i.digest] for i in kept]).astype(np.float32)
        if kept
        else np.zeros((0, dim), np.float32)
    )
    return CachedFeatures(features, kept, computed, failed)
