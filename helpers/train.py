"""Transfer learning on hashtags: the one function behind ``hashtag train`` and ``retrain.py``.

Steps: scan and split the images (:mod:`helpers.dataset`), get their feature
vectors from the bottleneck cache (:mod:`helpers.bottlenecks`), fit a softmax
head with early stopping, optionally continue through the backbone with
augmentation and/or fine-tuning, evaluate on the test split, and export one
SavedModel (:mod:`helpers.export`) atomically under ``models/<run>/``.
TensorBoard logs go to ``runs/<run>/``, one folder per run, with hyper-parameters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from helpers.backbones import DEFAULT_BACKBONE, get_backbone, load_backbone
from helpers.bottlenecks import BottleneckCache, cached_features
from helpers.dataset import DEFAULT_MIN_IMAGES, Dataset, scan
from helpers.features import extract_features

log = logging.getLogger(__name__)

# Early stopping counts an epoch as progress only if the monitored loss drops by this
# much; smaller drops are noise that kept the head training all 200 epochs for nothing.
MIN_IMPROVEMENT = 1e-3


@dataclass
class TrainConfig:
    """Every knob of a training run, with the defaults a workshop wants."""

    image_dir: str = "hashtags"
    backbone: str = DEFAULT_BACKBONE
    input_size: int | None = None
    # head training on cached features
    epochs: int = 200  # upper bound; early stopping usually ends far sooner
    max_steps: int | None = None  # retrain.py's --how_many_training_steps
    batch_size: int = 32
    learning_rate: float = 1e-3
    dropout: float = 0.0
    label_smoothing: float = 0.0
    patience: int = 10
    class_weights: bool = True
    validation_pct: float = 10.0
    testing_pct: float = 10.0
    min_images: int = DEFAULT_MIN_IMAGES
    seed: int = 0
    # training through the backbone
    augment: bool = False
    flip_left_right: bool = True
    random_crop: float = 10.0  # percent of margin cropped away at most
    random_scale: float = 10.0  # percent of zoom in or out at most
    random_brightness: float = 10.0  # percent brightness change at most
    random_rotation: float = 0.0  # degrees of rotation at most
    fine_tune: bool = False
    backbone_epochs: int = 5
    fine_tune_learning_rate: float = 1e-5
    # where things go
    bottleneck_dir: str | None = None
    runs_dir: str = "runs"
    models_dir: str = "models"
    run_name: str | None = None
    saved_model_dir: str | None = None  # explicit model folder (retrain.py); else models/<run>

    def hparams(self) -> dict:
        """The hyper-parameters worth comparing between runs (for TensorBoard)."""
        keys = (
            "backbone",
            "learning_rate",
            "batch_size",
            "dropout",
            "label_smoothing",
            "class_weights",
            "augment",
            "fine_tune",
            "patience",
            "max_steps",
        )
        return {k: (getattr(self, k) if getattr(self, k) is not None else "none") for k in keys}


@dataclass
class TrainResult:
    model_dir: Path
    run_dir: Path
    dataset: Dataset
    metrics: dict
    misclassified: list[dict] = field(default_factory=list)
    features_computed: int = 0
    timings: dict = field(default_factory=dict)

    def summary(self) -> str:
        m = self.metrics
        lines = [self.dataset.summary(), ""]
        lines.append(
            f"features extracted now: {self.features_computed} "
            f"(the rest came from the bottleneck cache)"
        )
        lines.append(f"epochs trained: {m['epochs_trained']}  stopped early: {m['stopped_early']}")
        if m.get("test_accuracy") is not None:
            lines.append(
                f"final test accuracy: {m['test_accuracy']:.3f} "
                f"on {m['counts']['test']} test images"
            )
        lines.append(f"model: {self.model_dir}")
        lines.append(f"TensorBoard: tensorboard --logdir {self.run_dir.parent}")
        return "\n".join(lines)


def _run_name(config: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = Path(config.backbone).name if "/" in config.backbone else config.backbone
    return config.run_name or f"{stamp}-{name}"


def _one_hot(indices: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[indices]


def balanced_class_weights(labels: np.ndarray, classes: int) -> dict[int, float]:
    """Weights n / (k * count): an under-represented hashtag counts as much as the others."""
    counts = np.bincount(labels, minlength=classes).astype(float)
    return {i: float(len(labels) / (classes * c)) if c else 0.0 for i, c in enumerate(counts)}


def _learning_rate_logger():
    """A Keras callback that puts the current learning rate into the epoch logs."""
    from helpers.tf import keras

    def on_epoch_end(epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.backend.get_value(callback.model.optimizer.learning_rate)
            )

    callback = keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)
    return callback


def _progress_callback(total_epochs: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    from helpers.tf import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total_epochs, desc=desc, unit="epoch", disable=not enabled)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(
                {
                    k: f"{v:.3f}"
                    for k, v in logs.items()
                    if k in ("loss", "accuracy", "val_loss", "val_accuracy")
                }
            )
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def _callbacks(
    config, run_dir: Path, has_validation: bool, epochs: int, desc: str, progress: bool, extra=()
):
    from helpers.tf import keras

    monitor = "val_loss" if has_validation else "loss"
    extra = [keras.callbacks.LambdaCallback(on_epoch_end=fn) for fn in extra]
    return [
        _learning_rate_logger(),  # before TensorBoard, so the rate is in the logs it writes
        keras.callbacks.TensorBoard(log_dir=str(run_dir), write_graph=False, profile_batch=0),
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.patience, restore_best_weights=True
        ),
        _progress_callback(epochs, desc, progress),
        *extra,
    ]


def build_head(feature_dim: int, classes: int, dropout: float):
    """The classifier head: (dropout) -> dense softmax over hashtags."""
    from helpers.tf import keras

    inputs = keras.Input((feature_dim,), name="features")
    x = keras.layers.Dropout(dropout, name="dropout")(inputs) if dropout else inputs
    outputs = keras.layers.Dense(classes, activation="softmax", name="hashtag")(x)
    return keras.Model(inputs, outputs, name="head")


def _compile(model, learning_rate: float, label_smoothing: float):
    from helpers.tf import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )


def _epochs_for(config: TrainConfig, train_count: int) -> int:
    if not config.max_steps:
        return config.epochs
    steps_per_epoch = max(1, math.ceil(train_count / config.batch_size))
    return max(1, math.ceil(config.max_steps / steps_per_epoch))


@dataclass
class HeadHistory:
    epochs: int
    stopped_early: bool
    logs: list[dict]  # per epoch: loss, accuracy, val_loss, val_accuracy, learning_rate


def fit_head(config, x_train, y_train, x_val, y_val, classes, run_dir, progress=True, callbacks=()):
    """Train the softmax head on feature vectors, with early stopping on validation loss.

    A hand-written loop, one compiled call per epoch: on a few hundred cached
    vectors Keras' ``fit`` spends far longer in per-epoch overhead than in
    arithmetic. Logs the same TensorBoard scalars as Keras (``epoch_loss``,
    ``epoch_accuracy``, ``epoch_learning_rate``) under ``run_dir/train`` and
    ``run_dir/validation``. ``callbacks`` are called as ``fn(epoch, logs)``.

    Returns:
        (head Keras model with the best weights, :class:`HeadHistory`).
    """
    from tqdm.auto import tqdm

    from helpers.tf import keras, tf

    keras.utils.set_random_seed(config.seed)
    head = build_head(x_train.shape[1], classes, config.dropout)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    optimizer.build(head.trainable_variables)
    loss_fn = keras.losses.CategoricalCrossentropy(
        label_smoothing=config.label_smoothing, reduction="none"
    )
    weights = balanced_class_weights(y_train, classes) if config.class_weights else None
    sample_w = np.array(
        [weights[y] for y in y_train] if weights else np.ones(len(y_train)), np.float32
    )
    xt, yt, wt = (
        tf.constant(x_train),
        tf.constant(_one_hot(y_train, classes)),
        tf.constant(sample_w),
    )
    xv, yv = tf.constant(x_val), tf.constant(_one_hot(y_val, classes))
    n, bs = len(x_train), config.batch_size
    steps = max(1, math.ceil(n / bs))

    @tf.function
    def train_epoch(order):
        total, correct = tf.constant(0.0), tf.constant(0.0)
        for i in tf.range(steps):
            idx = order[i * bs : (i + 1) * bs]
            x, y, w = tf.gather(xt, idx), tf.gather(yt, idx), tf.gather(wt, idx)
            with tf.GradientTape() as tape:
                probs = head(x, training=True)
                loss = tf.reduce_sum(loss_fn(y, probs) * w) / tf.reduce_sum(w)
            optimizer.apply_gradients(
                zip(tape.gradient(loss, head.trainable_variables), head.trainable_variables)
            )
            size = tf.cast(tf.shape(idx)[0], tf.float32)
            total += loss * size
            correct += tf.reduce_sum(tf.cast(tf.argmax(probs, 1) == tf.argmax(y, 1), tf.float32))
        return total / n, correct / n

    @tf.function
    def evaluate(x, y):
        probs = head(x, training=False)
        return (
            tf.reduce_mean(keras.losses.categorical_crossentropy(y, probs)),
            tf.reduce_mean(tf.cast(tf.argmax(probs, 1) == tf.argmax(y, 1), tf.float32)),
        )

    has_val = len(x_val) > 0
    max_epochs = _epochs_for(config, n)
    writers = {s: tf.summary.create_file_writer(str(run_dir / s)) for s in ("train", "validation")}
    rng = np.random.default_rng(config.seed)
    best, best_weights, waited, logs_all = np.inf, head.get_weights(), 0, []
    with tqdm(total=max_epochs, desc="head", unit="epoch", disable=not progress) as bar:
        for epoch in range(max_epochs):
            loss, acc = train_epoch(tf.constant(rng.permutation(n), tf.int32))
            logs = {
                "loss": float(loss),
                "accuracy": float(acc),
                "learning_rate": float(optimizer.learning_rate.numpy()),
            }
            if has_val:
                val_loss, val_acc = evaluate(xv, yv)
                logs.update(val_loss=float(val_loss), val_accuracy=float(val_acc))
            _write_epoch(writers, epoch, logs)
            logs_all.append(logs)
            for fn in callbacks:
                fn(epoch, logs)
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k != "learning_rate"})
            bar.update(1)
            monitored = logs["val_loss"] if has_val else logs["loss"]
            if monitored < best - MIN_IMPROVEMENT:
                best, best_weights, waited = monitored, head.get_weights(), 0
            else:
                waited += 1
                if waited >= config.patience:
                    break
    for writer in writers.values():
        writer.flush()
    head.set_weights(best_weights)
    trained = len(logs_all)
    return head, HeadHistory(trained, trained < max_epochs, logs_all)


def _write_epoch(writers, epoch: int, logs: dict) -> None:
    from helpers.tf import tf

    with writers["train"].as_default():
        for key in ("loss", "accuracy", "learning_rate"):
            tf.summary.scalar(f"epoch_{key}", logs[key], step=epoch)
    if "val_loss" in logs:
        with writers["validation"].as_default():
            tf.summary.scalar("epoch_loss", logs["val_loss"], step=epoch)
            tf.summary.scalar("epoch_accuracy", logs["val_accuracy"], step=epoch)


def _augmentation(config: TrainConfig):
    """The retrain.py distortions as Keras layers (active only while training)."""
    from helpers.tf import keras

    layers = []
    if config.flip_left_right:
        layers.append(keras.layers.RandomFlip("horizontal", seed=config.seed))
    if config.random_crop:
        layers.append(keras.layers.RandomZoom((-config.random_crop / 100, 0), seed=config.seed))
    if config.random_scale:
        s = config.random_scale / 100
        layers.append(keras.layers.RandomZoom((-s, s), seed=config.seed + 1))
    if config.random_brightness:
        layers.append(
            keras.layers.RandomBrightness(
                config.random_brightness / 100, value_range=(0.0, 1.0), seed=config.seed
            )
        )
    if config.random_rotation:
        layers.append(
            keras.layers.RandomRotation(
                config.random_rotation / 360, fill_mode="reflect", seed=config.seed
            )
        )
    return layers


def augmentation_preview(image: np.ndarray, config: TrainConfig, count: int = 8) -> list:
    """``count`` randomly distorted versions of one uint8 image, exactly as training sees them."""
    from helpers.tf import keras, tf

    pipeline = keras.Sequential(_augmentation(config))
    batch = tf.repeat(tf.image.convert_image_dtype(image[None], tf.float32), count, axis=0)
    out = pipeline(batch, training=True) if pipeline.layers else batch
    return [np.clip(x, 0, 1) for x in out.numpy()]


def fit_through_backbone(
    config, loaded, head, items_train, items_val, dataset, run_dir, progress=True, callbacks=()
):
    """Train backbone (+ augmentation) + head on decoded images, starting from ``head``."""
    from helpers.features import decoded_images
    from helpers.tf import keras, tf

    size = loaded.backbone.require_input_size()
    classes = len(dataset.labels)

    def images_and_labels(items, training):
        labels = tf.data.Dataset.from_tensor_slices(
            _one_hot(np.array([dataset.label_index(i) for i in items]), classes)
        )
        images = decoded_images([i.path for i in items], size).map(lambda img, err: img)
        ds = tf.data.Dataset.zip((images, labels))
        if training:
            ds = ds.shuffle(len(items), seed=config.seed)
        return ds.batch(config.batch_size).prefetch(2)

    inputs = keras.Input((size, size, 3), name="images")
    x = inputs
    if config.augment:
        for layer in _augmentation(config):
            x = layer(x)
    x = loaded.keras_layer(trainable=config.fine_tune)(x)
    model = keras.Model(inputs, head(x), name="classifier")
    lr = config.fine_tune_learning_rate if config.fine_tune else config.learning_rate
    _compile(model, lr, config.label_smoothing)
    y_train = np.array([dataset.label_index(i) for i in items_train])
    history = model.fit(
        images_and_labels(items_train, True),
        epochs=config.backbone_epochs,
        verbose=0,
        validation_data=images_and_labels(items_val, False) if items_val else None,
        class_weight=balanced_class_weights(y_train, classes) if config.class_weights else None,
        callbacks=_callbacks(
            config,
            run_dir / "backbone",
            bool(items_val),
            config.backbone_epochs,
            "backbone",
            progress,
            callbacks,
        ),
    )
    return len(history.history["loss"])


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, per-class precision/recall and the confusion matrix (rows: true)."""
    k = len(labels)
    matrix = np.zeros((k, k), dtype=int)
    for t, p in zip(y_true, y_pred):
        matrix[t, p] += 1
    per_class = {}
    for i, label in enumerate(labels):
        predicted, actual = matrix[:, i].sum(), matrix[i, :].sum()
        per_class[label] = {
            "precision": float(matrix[i, i] / predicted) if predicted else None,
            "recall": float(matrix[i, i] / actual) if actual else None,
            "support": int(actual),
        }
    total = int(matrix.sum())
    return {
        "accuracy": float(np.trace(matrix) / total) if total else None,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def _log_hparams(run_dir: Path, config: TrainConfig, metrics: dict) -> None:
    from tensorboard.plugins.hparams import api as hp

    from helpers.tf import tf

    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hp.hparams(config.hparams(), trial_id=run_dir.name)
        for key in ("test_accuracy", "validation_accuracy"):
            if metrics.get(key) is not None:
                tf.summary.scalar(key, metrics[key], step=0)


def train(config: TrainConfig | None = None, progress: bool = True, callbacks=()) -> TrainResult:
    """Train a hashtag classifier and export it.

    Args:
        config: every setting; :class:`TrainConfig` defaults when omitted.
        progress: show tqdm progress bars.
        callbacks: functions called as ``fn(epoch, logs)`` after every epoch
            (a notebook's live plot, say).

    Returns:
        A :class:`TrainResult`: the model folder, metrics, misclassified test
        images and timings. ``result.summary()`` is what the CLI prints.
    """
    from helpers.export import export_model, publish

    config = config or TrainConfig()
    started = time.perf_counter()
    timings = {}
    backbone = get_backbone(config.backbone, config.input_size)
    cache = BottleneckCache.for_backbone(backbone, config.bottleneck_dir)
    dataset = scan(
        config.image_dir,
        config.validation_pct,
        config.testing_pct,
        config.min_images,
        known_good=cache.known_digests(),
    )
    timings["scan"] = time.perf_counter() - started

    loaded = None

    def get_loaded():
        nonlocal loaded
        if loaded is None:
            loaded = load_backbone(backbone)
        return loaded

    t = time.perf_counter()
    feats = cached_features(dataset.items, cache, get_loaded, config.batch_size, progress)
    dataset.unreadable.extend(feats.failed)
    timings["features"] = time.perf_counter() - t
    by_split = {
        s: [i for i, item in enumerate(feats.kept) if item.split == s]
        for s in ("train", "validation", "test")
    }
    labels_all = np.array([dataset.label_index(item) for item in feats.kept], dtype=int)

    def xy(split):
        rows = by_split[split]
        return feats.features[rows], labels_all[rows]

    run_name = _run_name(config)
    run_dir = Path(config.runs_dir) / run_name
    classes = len(dataset.labels)
    t = time.perf_counter()
    head, history = fit_head(
        config, *xy("train"), *xy("validation"), classes, run_dir, progress, callbacks
    )
    epochs_trained, stopped_early = history.epochs, history.stopped_early
    timings["head"] = time.perf_counter() - t
    if config.augment or config.fine_tune:
        t = time.perf_counter()
        item_lists = {s: [feats.kept[i] for i in rows] for s, rows in by_split.items()}
        epochs_trained += fit_through_backbone(
            config,
            get_loaded(),
            head,
            item_lists["train"],
            item_lists["validation"],
            dataset,
            run_dir,
            progress,
            callbacks,
        )
        timings["backbone"] = time.perf_counter() - t
        # the head's inputs changed with the backbone: evaluate on fresh features
        feats_eval = {
            s: extract_features(
                [feats.kept[i].path for i in by_split[s]],
                get_loaded(),
                config.batch_size,
                progress=False,
            ).features
            for s in ("validation", "test")
        }
    else:
        feats_eval = {s: xy(s)[0] for s in ("validation", "test")}

    metrics = {
        "run": run_name,
        "backbone": backbone.name,
        "input_size": backbone.input_size,
        "labels": dataset.labels,
        "counts": {s: len(rows) for s, rows in by_split.items()},
        "per_label": dataset.counts(),
        "epochs_trained": epochs_trained,
        "stopped_early": stopped_early,
        "hyperparameters": dataclasses.asdict(config),
        "features_computed": feats.computed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    misclassified = []
    for split in ("validation", "test"):
        y_true = xy(split)[1]
        probs = (
            head.predict(feats_eval[split], verbose=0) if len(y_true) else np.zeros((0, classes))
        )
        result = classification_metrics(y_true, probs.argmax(axis=1), dataset.labels)
        metrics[f"{split}_accuracy"] = result["accuracy"]
        if split == "test":
            metrics.update(
                per_class=result["per_class"], confusion_matrix=result["confusion_matrix"]
            )
            for row, p in zip(by_split["test"], probs):
                item = feats.kept[row]
                if p.argmax() != dataset.label_index(item):
                    misclassified.append(
                        {
                            "path": item.path,
                            "true": item.label,
                            "predicted": dataset.labels[int(p.argmax())],
                            "probability": float(p.max()),
                        }
                    )
    metrics["misclassified"] = misclassified
    if not by_split["test"]:
        log.warning("the test split is empty: no test accuracy (add images)")

    t = time.perf_counter()
    kernel, bias = head.get_layer("hashtag").get_weights()
    metrics["duration_seconds"] = round(time.perf_counter() - started, 2)
    metrics["timings"] = {k: round(v, 3) for k, v in timings.items()}
    target = (
        Path(config.saved_model_dir)
        if config.saved_model_dir
        else Path(config.models_dir) / run_name
    )
    export_model(get_loaded(), kernel, bias, dataset.labels, target, metrics, config)
    if not config.saved_model_dir:
        publish(target)
    timings["export"] = time.perf_counter() - t
    _log_hparams(run_dir, config, metrics)
    log.info(
        "trained %s in %.1f s: %s", run_name, time.perf_counter() - started, json.dumps(timings)
    )
    return TrainResult(
        target,
        run_dir,
        dataset,
        metrics,
        misclassified,
        feats.computed,
        {**timings, "total": time.perf_counter() - started},
    )
