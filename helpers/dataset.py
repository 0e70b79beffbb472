"""``hashtags/<tag>/*`` -> a checked, labelled, stably split list of images.

The split of an image depends only on the SHA-256 of its content, so adding
images never moves an old one between train, validation and test, identical
copies always land in the same split, and renaming a file changes nothing
(TensorFlow's old retrain.py hashed the file name instead).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from helpers.images import ImageError, is_image_name, read_image

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
WARN_BELOW = 20  # retrain.py's warning threshold
DEFAULT_MIN_IMAGES = 5


class DatasetError(ValueError):
    """The image folder cannot be trained on as it is; the message says what to change."""


@dataclass(frozen=True)
class Item:
    path: str
    label: str
    digest: str  # SHA-256 of the file's bytes
    split: str


@dataclass
class Dataset:
    """Labelled images and everything noticed while checking them."""

    root: str
    labels: list[str]
    items: list[Item]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (dropped copy, kept)
    cross_label: list[tuple[str, list[str]]] = field(default_factory=list)  # (digest, paths)
    warnings: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Item]:
        return [item for item in self.items if item.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """{label: {split: count}} for every label and split."""
        table = {label: dict.fromkeys(SPLITS, 0) for label in self.labels}
        for item in self.items:
            table[item.label][item.split] += 1
        return table

    def label_index(self, item: Item) -> int:
        return self.labels.index(item.label)

    def summary(self) -> str:
        """A small table of images per hashtag and split, then what was noticed."""
        lines = [f"{'hashtag':<20} {'train':>6} {'val':>6} {'test':>6} {'total':>6}"]
        for label, row in self.counts().items():
            lines.append(
                f"#{label:<19} {row['train']:>6} {row['validation']:>6} "
                f"{row['test']:>6} {sum(row.values()):>6}"
            )
        totals = [len(self.split(s)) for s in SPLITS]
        lines.append(f"{'all':<20} {totals[0]:>6} {totals[1]:>6} {totals[2]:>6} {sum(totals):>6}")
        for path, reason in self.unreadable:
            lines.append(f"skipped unreadable {path}: {reason}")
        for dropped, kept in self.duplicates:
            lines.append(f"skipped duplicate {dropped} (same content as {kept})")
        for _, paths in self.cross_label:
            lines.append(f"same image under several hashtags: {', '.join(paths)}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def split_of(digest: str, validation_pct: float, testing_pct: float) -> str:
    """The split an image belongs to, from its content hash alone."""
    bucket = int(digest[:12], 16) % 10_000 / 100.0  # 0.00 .. 99.99
    if bucket < testing_pct:
        return "test"
    if bucket < testing_pct + validation_pct:
        return "validation"
    return "train"


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find_labelled_files(root: str | Path) -> dict[str, list[Path]]:
    """{hashtag: image files} for every sub-folder of ``root`` holding images."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist")
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and is_image_name(p)
        )
        if files:
            found[folder.name] = files
    return found


def scan(
    root: str | Path,
    validation_pct: float = 10,
    testing_pct: float = 10,
    min_images: int = DEFAULT_MIN_IMAGES,
    known_good: set[str] | frozenset = frozenset(),
) -> Dataset:
    """Check, deduplicate and split the images under ``root``.

    Args:
        root: folder with one sub-folder per hashtag.
        validation_pct, testing_pct: percentages of images held out.
        min_images: a hashtag with fewer usable images is refused (DatasetError).
        known_good: content hashes already known to decode (e.g. cached
            bottlenecks); those files are hashed but not decoded again.

    Returns:
        A :class:`Dataset`. Unreadable files and duplicates are reported in it.
    """
    if validation_pct < 0 or testing_pct < 0 or validation_pct + testing_pct >= 100:
        raise DatasetError("validation and testing percentages must leave images to train on")
    files = find_labelled_files(root)
    if len(files) < 2:
        raise DatasetError(
            f"found {len(files)} hashtag folder(s) with images in {root}; a classifier needs "
            "at least two (hashtags/<tag>/*.jpg). Try 'hashtag sample' for an offline set."
        )
    items, unreadable, duplicates = [], [], []
    first_seen: dict[tuple[str, str], str] = {}
    by_digest: dict[str, list[str]] = defaultdict(list)
    for label, paths in files.items():
        for path in paths:
            try:
                digest = file_digest(path)
                if digest not in known_good:
                    read_image(path)
            except (OSError, ImageError) as exc:
                unreadable.append((str(path), str(exc)))
                continue
            if (label, digest) in first_seen:
                duplicates.append((str(path), first_seen[(label, digest)]))
                continue
            first_seen[(label, digest)] = str(path)
            by_digest[digest].append(str(path))
            items.append(
                Item(str(path), label, digest, split_of(digest, validation_pct, testing_pct))
            )
    cross = [(d, paths) for d, paths in by_digest.items() if len(paths) > 1]
    dataset = Dataset(str(root), list(files), items, unreadable, duplicates, cross)
    _check_counts(dataset, min_images)
    for path, reason in unreadable:
        log.warning("skipped unreadable %s: %s", path, reason)
    return dataset


def _check_counts(dataset: Dataset, min_images: int) -> None:
    per_label = Counter(item.label for item in dataset.items)
    too_few = {label: per_label[label] for label in dataset.labels if per_label[label] < min_images}
    if too_few:
        listing = ", ".join(f"#{label} ({n})" for label, n in too_few.items())
        raise DatasetError(
            f"too few usable images for {listing}: at least {min_images} per hashtag are "
            "needed. Add images, remove the folder, or lower --min_images."
        )
    for label in dataset.labels:
        if per_label[label] < WARN_BELOW:
            dataset.warnings.append(
                f"#{label} has only {per_label[label]} images; {WARN_BELOW}+ give a steadier model"
            )
        train = sum(1 for i in dataset.items if i.label == label and i.split == "train")
        if train == 0:
            raise DatasetError(
                f"#{label} has no training images after the split; add images "
                "or lower --validation_percentage / --testing_percentage"
            )
