"""Comparing saved models side by side (notebook 05, the Bonus list's "compare models")."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from helpers.export import LATEST, METRICS, read_metrics


def list_runs(models_dir: str | Path, latency: bool = False):
    """A table of every exported model: backbone, settings, accuracy (and latency if asked)."""
    import pandas as pd

    rows = []
    for folder in sorted(Path(models_dir).iterdir()):
        if folder.name == LATEST or folder.name.startswith(".") or not (folder / METRICS).exists():
            continue
        m = read_metrics(folder)
        hp = m.get("hyperparameters", {})
        row = {
            "run": m["run"],
            "backbone": m["backbone"],
            "test_accuracy": m.get("test_accuracy"),
            "validation_accuracy": m.get("validation_accuracy"),
            "epochs": m.get("epochs_trained"),
            "learning_rate": hp.get("learning_rate"),
            "dropout": hp.get("dropout"),
            "augment": hp.get("augment"),
            "fine_tune": hp.get("fine_tune"),
            "train_seconds": m.get("duration_seconds"),
            "created": m.get("created"),
        }
        if latency:
            row["latency_ms"] = round(measure_latency(folder), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def measure_latency(model_dir: str | Path, repeats: int = 10) -> float:
    """Median milliseconds for one image through the exported model (after one warm-up)."""
    from helpers.predict import Predictor

    predictor = Predictor(model_dir)
    image = np.random.default_rng(0).integers(
        0, 255, (1, predictor.input_size, predictor.input_size, 3), dtype=np.uint8
    )
    predictor.predict_arrays(image)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predictor.predict_arrays(image)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
