"""The pictures the notebooks and the dashboard show. Each function returns a Figure."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in (
        "module://matplotlib_inline.backend_inline",
        "nbagg",
        "widget",
        "ipympl",
    ):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def counts_bar(table):
    """Images per hashtag (readable ones solid, unreadable ones hatched)."""
    plt = _plt()
    counts = table.groupby(["label", "readable"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    good = counts.get(True, 0)
    ax.bar(counts.index, good, label="readable")
    if False in counts:
        ax.bar(counts.index, counts[False], bottom=good, hatch="//", label="unreadable")
    ax.set_ylabel("images")
    ax.set_title("Images per hashtag")
    ax.legend()
    fig.tight_layout()
    return fig


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] = (), columns: int = 6):
    """A grid of small images with optional titles."""
    plt = _plt()
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, list(titles) + [""] * len(images)):
        ax.imshow(image)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def sizes_scatter(table):
    """Width against height of every readable image, coloured by hashtag."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, rows in table[table.readable].groupby("label"):
        ax.scatter(rows.width, rows.height, s=12, alpha=0.6, label=f"#{label}")
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title("Image sizes")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cooccurrence_bars(frame):
    """For each hashtag, the other hashtags its captions use most."""
    plt = _plt()
    labels = list(dict.fromkeys(frame.hashtag)) or ["(no manifests)"]
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3), squeeze=False)
    for ax, label in zip(axes[0], labels):
        rows = frame[frame.hashtag == label].iloc[::-1]
        ax.barh([f"#{t}" for t in rows.also_tagged], rows.posts)
        ax.set_title(f"with #{label}", fontsize=9)
    fig.tight_layout()
    return fig


def confusion_matrix(matrix, labels: Sequence[str]):
    """A confusion matrix (rows: true hashtag, columns: predicted) with counts."""
    plt = _plt()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(labels), 0.8 + 0.6 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), [f"#{x}" for x in labels], rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), [f"#{x}" for x in labels])
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(n),
            ha="center",
            va="center",
            color="white" if n > matrix.max() / 2 else "black",
        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig


def prediction_bars(top: Sequence[tuple[str, float]], title: str = ""):
    """Horizontal bars of the top hashtags and their probabilities."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 0.45 * len(top) + 0.9))
    names = [f"#{h}" for h, _ in top][::-1]
    values = [p for _, p in top][::-1]
    ax.barh(names, values, color="#3b82f6")
    ax.set_xlim(0, 1)
    for y, v in enumerate(values):
        ax.text(min(v + 0.02, 0.85), y, f"{v:.0%}", va="center")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def to_png(fig) -> bytes:
    """Render a figure to PNG bytes and close it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


class LiveTrainingPlot:
    """A training callback ``fn(epoch, logs)`` that redraws loss and accuracy curves in place.

    In a notebook the figure updates under the cell; elsewhere it only records.
    """

    def __init__(self, every: int = 1):
        self.every = every
        self.history: list[dict] = []
        self._handle = None

    def __call__(self, epoch: int, logs: dict) -> None:
        self.history.append(dict(logs, epoch=epoch))
        if epoch % self.every == 0:
            self.show()

    def figure(self):
        plt = _plt()
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3))
        epochs = [h["epoch"] for h in self.history]
        for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
            ax.plot(epochs, [h[key] for h in self.history], label="train")
            if self.history and f"val_{key}" in self.history[0]:
                ax.plot(epochs, [h[f"val_{key}"] for h in self.history], label="validation")
            ax.set_title(key)
            ax.set_xlabel("epoch")
            ax.legend()
        fig.tight_layout()
        return fig

    def show(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        plt = _plt()
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
