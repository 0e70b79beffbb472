"""Looking at a hashtag data set before training on it (notebook 02).

Everything here reads; nothing changes a file until :func:`apply_cleaning` is
called with actions the user chose. Near-duplicates are found with a 64-bit
difference hash (dHash): two images whose hashes differ in a few bits look
alike even after resizing or recompression.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from helpers.dataset import find_labelled_files
from helpers.images import ImageError, decode_image

QUARANTINE = ".quarantine"  # hidden: dataset.scan never looks inside


def dhash(rgb: np.ndarray, size: int = 8) -> int:
    """64-bit difference hash of an RGB image: brighter-than-right-neighbour bits."""
    grey = Image.fromarray(rgb).convert("L").resize((size + 1, size), Image.BILINEAR)
    pixels = np.asarray(grey, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def image_table(root: str | Path):
    """One row per image file: label, size, bytes, readability, content hash, dHash."""
    import pandas as pd

    rows = []
    for label, paths in find_labelled_files(root).items():
        for path in paths:
            data = path.read_bytes()
            row = {
                "path": str(path),
                "label": label,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "width": None,
                "height": None,
                "readable": True,
                "error": None,
                "dhash": None,
            }
            try:
                rgb = decode_image(data)
                row.update(height=rgb.shape[0], width=rgb.shape[1], dhash=dhash(rgb))
            except ImageError as exc:
                row.update(readable=False, error=str(exc))
            rows.append(row)
    return pd.DataFrame(rows)


def similar_pairs(table, max_distance: int = 6):
    """Pairs of readable images that are identical or look alike (dHash distance)."""
    import pandas as pd

    good = table[table.readable].reset_index(drop=True)
    rows = []
    for i, j in itertools.combinations(range(len(good)), 2):
        a, b = good.iloc[i], good.iloc[j]
        exact = a.sha256 == b.sha256
        distance = 0 if exact else hamming(int(a.dhash), int(b.dhash))
        if distance <= max_distance:
            rows.append(
                {
                    "a": a.path,
                    "b": b.path,
                    "label_a": a.label,
                    "label_b": b.label,
                    "distance": distance,
                    "exact": bool(exact),
                    "across_hashtags": a.label != b.label,
                }
            )
    return pd.DataFrame(
        rows, columns=["a", "b", "label_a", "label_b", "distance", "exact", "across_hashtags"]
    )


def cooccurring_hashtags(root: str | Path, top: int = 10):
    """From each folder's manifest.jsonl: the other hashtags captions use most, per folder."""
    import pandas as pd

    from helpers.manifest import read_manifest

    rows = []
    for label in find_labelled_files(root):
        counts = Counter()
        for record in read_manifest(Path(root) / label):
            counts.update(t for t in set(record.get("hashtags") or []) if t != label)
        rows.extend(
            {"hashtag": label, "also_tagged": t, "posts": n} for t, n in counts.most_common(top)
        )
    return pd.DataFrame(rows, columns=["hashtag", "also_tagged", "posts"])


@dataclass(frozen=True)
class Action:
    path: str
    reason: str


def recommend_cleaning(table, pairs) -> list[Action]:
    """Files worth setting aside: unreadable ones, and the second copy of exact duplicates."""
    actions = [
        Action(row.path, f"unreadable: {row.error}") for row in table[~table.readable].itertuples()
    ]
    seen = set()
    for row in pairs[pairs.exact].itertuples() if len(pairs) else []:
        if row.a not in seen and row.b not in seen:
            where = "under another hashtag" if row.across_hashtags else "in the same hashtag"
            actions.append(Action(row.b, f"exact copy of {row.a} {where}"))
            seen.add(row.b)
    return actions


def apply_cleaning(actions: list[Action], root: str | Path) -> list[Path]:
    """Move the files of ``actions`` into ``root/.quarantine/<hashtag>/`` (nothing is deleted)."""
    root = Path(root)
    moved = []
    for action in actions:
        source = Path(action.path)
        if not source.exists():
            continue
        target = root / QUARANTINE / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), target)
        moved.append(target)
    return moved


def thumbnail(path: str | Path, size: int = 160) -> np.ndarray:
    """A small RGB array of an image for grids (grey if unreadable)."""
    try:
        img = Image.fromarray(decode_image(Path(path).read_bytes()))
        return np.asarray(ImageOps.fit(img, (size, size)))
    except (ImageError, OSError):
        return np.full((size, size, 3), 128, np.uint8)
