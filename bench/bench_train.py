"""Benchmark: our training run against the make_image_classifier recipe, end to end.

On ../shared/datasets/clothing-cc0 with the efficientnet_lite0 backbone, one run
measures side by side, on the same train/validation/test split (our content-hash
split from helpers.dataset.scan):
  (a) the make_image_classifier recipe: a tf.data pipeline that decodes and
      resizes the JPEG files every epoch (image_dataset_from_directory's
      equivalent), keras.Sequential([hub.KerasLayer(backbone), Dense(softmax)]),
      Adam 1e-3, categorical cross-entropy, 5 epochs, batch 32, with validation
      data, then evaluation on the test split;
  (b) ours, cold: helpers.train.train with an empty bottleneck cache;
  (c) ours, warm: the same again with the cache filled (no feature extracted);
  (d) a logistic-regression linear probe on the cached features (accuracy only).
Times run from start to a trained classifier and its test accuracy: (a) includes
loading the backbone module, building the pipeline and model; (b) and (c) are
train()'s total less its SavedModel export (reported apart). The backbone module
is built into the cache beforehand (warm-up), and TensorFlow is imported before
any clock starts. Targets: b/a <= 0.5, c/a <= 0.05, our test accuracy >= a's - 0.01.
With --repeats N the rounds a, b, c are interleaved (b gets a new empty cache
each round) and medians are reported.

Usage: python bench/bench_train.py [--repeats N] [--epochs E] [--decode tf|pillow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "clothing-cc0"
BACKBONE = "efficientnet_lite0"
BATCH = 32
LEARNING_RATE = 1e-3


# --------------------------------------------------------------------------- (a) recipe


def recipe_run(dataset, epochs: int, decode: str, seed: int = 0) -> dict:
    """make_image_classifier's recipe on our split; returns seconds and test accuracy."""
    from helpers.backbones import load_backbone
    from helpers.images import read_image
    from helpers.tf import hub, keras, tf  # noqa: F401  (hub: the recipe's KerasLayer)

    started = time.perf_counter()
    loaded = load_backbone(BACKBONE)
    size = loaded.backbone.require_input_size()
    classes = len(dataset.labels)

    def decode_tf(path, label):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        return image / 255.0, label

    def decode_pillow(path, label):
        image = tf.numpy_function(lambda p: read_image(p.decode(), size=size), [path], tf.uint8)
        image.set_shape([size, size, 3])
        return tf.image.convert_image_dtype(image, tf.float32), label

    def pipeline(split: str, training: bool):
        items = dataset.split(split)
        labels = np.eye(classes, dtype=np.float32)[[dataset.label_index(i) for i in items]]
        ds = tf.data.Dataset.from_tensor_slices(([i.path for i in items], labels))
        if training:
            ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(
            decode_tf if decode == "tf" else decode_pillow, num_parallel_calls=tf.data.AUTOTUNE
        )
        return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE), len(items)

    keras.utils.set_random_seed(seed)
    train_ds, _ = pipeline("train", True)
    val_ds, n_val = pipeline("validation", False)
    test_ds, n_test = pipeline("test", False)
    model = keras.Sequential(
        [
            loaded.keras_layer(trainable=False),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    t_fit = time.perf_counter()
    history = model.fit(
        train_ds, epochs=epochs, validation_data=val_ds if n_val else None, verbose=0
    )
    t_eval = time.perf_counter()
    _, test_acc = model.evaluate(test_ds, verbose=0) if n_test else (None, None)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "setup": t_fit - started,
        "fit": t_eval - t_fit,
        "evaluate": done - t_eval,
        "test_accuracy": test_acc,
        "validation_accuracy": (history.history.get("val_accuracy") or [None])[-1],
    }


# --------------------------------------------------------------------------- (b), (c) ours


def our_run(bottleneck_dir: Path, work: Path, name: str) -> dict:
    from helpers.train import TrainConfig, train

    config = TrainConfig(
        image_dir=str(DATASET),
        backbone=BACKBONE,
        batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        bottleneck_dir=str(bottleneck_dir),
        runs_dir=str(work / "runs"),
        models_dir=str(work / "models"),
        run_name=name,
    )
    result = train(config, progress=False)
    t = result.timings
    return {
        "seconds": t["total"] - t["export"],
        "timings": dict(t),
        "test_accuracy": result.metrics["test_accuracy"],
        "validation_accuracy": result.metrics["validation_accuracy"],
        "epochs": result.metrics["epochs_trained"],
        "features_computed": result.features_computed,
        "result": result,
    }


# --------------------------------------------------------------------------- (d) probe


def _features(dataset, bottleneck_dir: Path, split: str):
    from helpers.backbones import get_backbone
    from helpers.bottlenecks import BottleneckCache

    cache = BottleneckCache.for_backbone(get_backbone(BACKBONE), bottleneck_dir)
    rows = [(cache.get(i.digest), dataset.label_index(i)) for i in dataset.split(split)]
    rows = [(x, y) for x, y in rows if x is not None]
    return np.stack([x for x, _ in rows]), np.array([y for _, y in rows])


def _logreg_numpy(x, y, classes: int, c: float = 1.0, max_iter: int = 1000):
    """Multinomial logistic regression, sklearn's objective: 0.5|W|^2 + C * sum(CE)."""
    d = x.shape[1]
    onehot = np.eye(classes)[y]
    x = x.astype(np.float64)

    def loss_grad(theta):
        w, b = theta[: d * classes].reshape(d, classes), theta[d * classes :]
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = 0.5 * np.sum(w * w) - c * np.sum(onehot * log_p)
        diff = c * (np.exp(log_p) - onehot)
        return loss, np.concatenate([(x.T @ diff + w).ravel(), diff.sum(axis=0)])

    theta = np.zeros(d * classes + classes)
    try:
        from scipy.optimize import minimize

        theta = minimize(
            loss_grad, theta, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
        ).x
        how = "numpy + scipy L-BFGS"
    except ImportError:
        step = 1.0 / (np.linalg.norm(x, 2) ** 2 * c + 1.0)  # 1/L for the softmax loss
        for _ in range(max_iter * 5):
            theta -= step * loss_grad(theta)[1]
        how = "numpy gradient descent"
    w, b = theta[: d * classes].reshape(d, classes), theta[d * classes :]
    return (lambda xs: (xs @ w + b).argmax(axis=1)), how


def linear_probe(dataset, bottleneck_dir: Path) -> dict:
    x_train, y_train = _features(dataset, bottleneck_dir, "train")
    x_test, y_test = _features(dataset, bottleneck_dir, "test")
    classes = len(dataset.labels)
    started = time.perf_counter()
    try:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
        predict, how = model.predict, "scikit-learn LogisticRegression"
    except ImportError:
        predict, how = _logreg_numpy(x_train, y_train, classes)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(predict(x_test) == y_test)) if len(y_test) else None
    return {"test_accuracy": accuracy, "how": how, "seconds": seconds}


# --------------------------------------------------------------------------- main


def _fmt_acc(value) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5, help="the recipe's epochs (a)")
    parser.add_argument(
        "--decode",
        choices=("tf", "pillow"),
        default="tf",
        help="the recipe's decoder: tf.io.decode_jpeg + tf.image.resize, "
        "or helpers.images.read_image in tf.numpy_function",
    )
    args = parser.parse_args()

    if not DATASET.is_dir():
        print(
            f"bench_train: dataset not found at {DATASET}; nothing to measure "
            "(it lives beside the project, in ../shared/datasets/clothing-cc0)."
        )
        return

    from helpers.backbones import CACHE_ENV, cache_dir

    os.environ.setdefault(CACHE_ENV, str(cache_dir()))  # the user's choice wins
    import_started = time.perf_counter()
    from helpers.tf import tf  # noqa: F401  (imported before any clock starts)

    tf_import = time.perf_counter() - import_started

    from helpers.backbones import load_backbone
    from helpers.dataset import scan

    t = time.perf_counter()
    load_backbone(BACKBONE)  # warm-up: builds the module into the cache once, if needed
    warmup = time.perf_counter() - t
    dataset = scan(DATASET)  # the split both sides use; also fills the OS file cache
    counts = {s: len(dataset.split(s)) for s in ("train", "validation", "test")}

    runs = {"a": [], "b": [], "c": []}
    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        tmp = Path(tmp)
        for r in range(args.repeats):
            print(f"round {r + 1}/{args.repeats}: (a) recipe ...", file=sys.stderr, flush=True)
            runs["a"].append(recipe_run(dataset, args.epochs, args.decode, seed=r))
            bottlenecks = tmp / f"bottlenecks-{r}"  # new and empty: (b) is cold every round
            print(f"round {r + 1}/{args.repeats}: (b) ours cold ...", file=sys.stderr, flush=True)
            runs["b"].append(our_run(bottlenecks, tmp / f"work-{r}", f"cold-{r}"))
            print(f"round {r + 1}/{args.repeats}: (c) ours warm ...", file=sys.stderr, flush=True)
            runs["c"].append(our_run(bottlenecks, tmp / f"work-{r}", f"warm-{r}"))
            print(
                f"round {r + 1}/{args.repeats}: seconds a {runs['a'][-1]['seconds']:.2f}, "
                f"b {runs['b'][-1]['seconds']:.2f}, c {runs['c'][-1]['seconds']:.2f}",
                file=sys.stderr,
                flush=True,
            )
            if runs["c"][-1]["features_computed"] != 0:
                print(
                    f"WARNING: warm run computed {runs['c'][-1]['features_computed']} "
                    "features (expected 0)",
                    file=sys.stderr,
                )
        probe = linear_probe(runs["b"][-1]["result"].dataset, bottlenecks)

    def med(key, field="seconds"):
        values = [run[field] for run in runs[key] if run[field] is not None]
        return statistics.median(values) if values else None

    def med_timing(key, phase):
        return statistics.median(run["timings"].get(phase, 0.0) for run in runs[key])

    ratio_b = statistics.median(b["seconds"] / a["seconds"] for a, b in zip(runs["a"], runs["b"]))
    ratio_c = statistics.median(c["seconds"] / a["seconds"] for a, c in zip(runs["a"], runs["c"]))
    acc = {k: med(k, "test_accuracy") for k in runs}
    warm_computed = max(run["features_computed"] for run in runs["c"])
    cold_computed = statistics.median(run["features_computed"] for run in runs["b"])

    print(
        f"dataset: {DATASET} ({len(dataset.labels)} classes; train {counts['train']}, "
        f"validation {counts['validation']}, test {counts['test']}); {BACKBONE}, batch {BATCH}, "
        f"{os.cpu_count()} cores; median of {args.repeats} interleaved round(s)"
    )
    print(
        f"(TensorFlow import {tf_import:.1f} s and backbone warm-up {warmup:.1f} s: "
        "before any clock, not counted)"
    )
    print()
    print(f"{'run':<44} {'seconds':>8} {'vs (a)':>7} {'test acc':>9} {'val acc':>8}")
    a_sec = med("a")
    rows = [
        ("a", f"(a) recipe: tf.data {args.decode} decode, {args.epochs} epochs"),
        ("b", f"(b) ours cold ({cold_computed:.0f} features extracted)"),
        ("c", f"(c) ours warm ({warm_computed} features extracted)"),
    ]
    for key, title in rows:
        sec = med(key)
        print(
            f"{title:<44} {sec:8.2f} {sec / a_sec:7.3f} {_fmt_acc(acc[key]):>9} "
            f"{_fmt_acc(med(key, 'validation_accuracy')):>8}"
        )
    print(
        f"{'(d) linear probe on cached features':<44} {probe['seconds']:8.2f} {'':>7} "
        f"{_fmt_acc(probe['test_accuracy']):>9} {'':>8}   ({probe['how']}; fit time only)"
    )
    print()
    print("where the time goes (median seconds):")
    print(f"  (a) {'setup':>8} {'fit':>8} {'evaluate':>8}")
    print(
        f"      {med('a', 'setup'):8.2f} {med('a', 'fit'):8.2f} {med('a', 'evaluate'):8.2f}"
        "   (setup: load module, pipeline, model)"
    )
    phases = ("scan", "features", "head", "export", "total")
    print(f"  ours {''.join(f'{p:>9}' for p in phases)}   epochs")
    for key in ("b", "c"):
        epochs = statistics.median(run["epochs"] for run in runs[key])
        print(f"  ({key}) {''.join(f'{med_timing(key, p):9.2f}' for p in phases)}   {epochs:.0f}")
    print(
        "  (total includes export and TensorBoard hparams logging; (b)/(c) seconds above "
        "are total - export)"
    )
    print()

    def ok(flag: bool) -> str:
        return "OK" if flag else "MISSED"

    a_acc, b_acc = acc["a"], acc["b"]
    acc_ok = a_acc is not None and b_acc is not None and b_acc >= a_acc - 0.01
    print(
        f"ratio b/a = {ratio_b:.3f} (target <= 0.50) {ok(ratio_b <= 0.5)}   "
        f"ratio c/a = {ratio_c:.3f} (target <= 0.05) {ok(ratio_c <= 0.05)}"
    )
    print(
        f"test accuracy: (a) recipe {_fmt_acc(a_acc).strip()}, ours {_fmt_acc(b_acc).strip()} "
        f"(target >= a - 0.01) {ok(acc_ok)}, linear probe "
        f"{_fmt_acc(probe['test_accuracy']).strip()}  on {counts['test']} test images"
    )
    print(f"warm run extracted {warm_computed} features (target 0) {ok(warm_computed == 0)}")


if __name__ == "__main__":
    main()
