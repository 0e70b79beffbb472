"""One hashtag folder on disk: its images and ``manifest.jsonl``, one JSON line per image.

``hashtags/<tag>/manifest.jsonl`` is written only by appending whole lines, so a
crash can at worst leave one torn last line, which readers skip (with a warning)
and the next append starts on a fresh line. Images are written under a hidden
temporary name and renamed, so a ``.jpg`` is either complete or absent.

What is on disk is the truth: a manifest line whose file is gone is ignored,
and a file without a line is kept (the scraper writes its line when it meets
the post again). Later notebooks read the records with :func:`read_manifest`.

A record holds at least ``file``, ``tag``, ``sha256``, ``bytes``, ``width``,
``height``, ``backend`` and ``saved_at``; scraped images add ``shortcode``,
``index``, ``post_url``, ``image_url``, ``taken_at``, ``caption`` and
``hashtags`` (every hashtag of the caption, lowercased, in order).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from helpers.atomic import write_bytes_atomic
from helpers.dataset import file_digest
from helpers.images import decode_image, is_image_name, read_image, sniff_image_type

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif", "bmp": ".bmp"}
_TAG = re.compile(r"^\w{1,150}$")
_HASHTAG = re.compile(r"#(\w{1,150})")  # instaloader's rule for caption hashtags
_STALE_TEMP_SECONDS = 3600


def normalize_tag(text: str) -> str:
    """``'#Paleo'`` -> ``'paleo'``; raises ValueError for anything that is not one hashtag."""
    tag = text.strip().lstrip("#").lower()
    if not _TAG.match(tag):
        raise ValueError(f"not a hashtag: {text!r} (letters, digits and _ only)")
    return tag


def caption_hashtags(caption: str | None) -> list[str]:
    """Every hashtag in a caption, lowercased, without '#', first occurrence order."""
    return list(dict.fromkeys(_HASHTAG.findall((caption or "").lower())))


def utc_iso(moment: datetime | None = None) -> str:
    """A UTC time as ``2024-05-29T16:26:40Z`` (now if not given)."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_path(tag_dir: str | Path) -> Path:
    return Path(tag_dir) / MANIFEST


def _ends_without_newline(path: Path) -> bool:
    """True if the file exists, is not empty and its last byte is not a newline."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


def append_manifest(tag_dir: str | Path, record: dict, fsync: bool = False) -> None:
    """Append ``record`` as one JSON line with a single ``O_APPEND`` write.

    Args:
        tag_dir: the hashtag folder (created if missing).
        record: a JSON-serialisable dict with at least a ``file`` key.
        fsync: flush the line to the disk before returning.
    """
    if not isinstance(record.get("file"), str):
        raise ValueError("a manifest record needs a 'file' name")
    path = manifest_path(tag_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    if _ends_without_newline(path):  # a torn line from a crash: start a fresh one
        data = b"\n" + data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _parse_lines(path: Path) -> list[dict]:
    """The valid records of a manifest file, in order; bad lines are logged and skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s line %d is not JSON (torn by a crash?); skipped", path, number)
            continue
        if isinstance(record, dict) and isinstance(record.get("file"), str):
            records.append(record)
        else:
            log.warning("%s line %d has no 'file'; skipped", path, number)
    return records


def read_manifest(tag_dir: str | Path, existing_only: bool = True) -> list[dict]:
    """The records of a hashtag folder: the last line per file, in the order written.

    Args:
        tag_dir: the hashtag folder.
        existing_only: drop records whose image file is no longer there.

    Returns:
        One dict per image file (see the module docstring for the keys).
    """
    tag_dir = Path(tag_dir)
    latest: dict[str, dict] = {}
    for record in _parse_lines(manifest_path(tag_dir)):
        latest.pop(record["file"], None)  # re-insert: order of the last write
        latest[record["file"]] = record
    records = list(latest.values())
    if existing_only:
        records = [r for r in records if (tag_dir / r["file"]).is_file()]
    return records


def _is_stale_temp(path: Path, now: float) -> bool:
    """A hidden ``.<name>.<random>.tmp`` left by a crash over an hour ago."""
    name = path.name
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    try:
        return now - path.stat().st_mtime > _STALE_TEMP_SECONDS
    except FileNotFoundError:
        return False


class TagFolder:
    """The images and manifest of one ``<dest>/<tag>/`` folder, indexed once, kept in sync."""

    def __init__(self, dest: str | Path, tag: str):
        self.tag = normalize_tag(tag)
        self.path = Path(dest) / self.tag
        self._files: dict[str, str] = {}  # stem -> file name
        self._records: dict[str, dict] = {}  # file name -> last manifest record
        self._digests: dict[str, str] | None = None  # sha256 -> file name, built on demand
        if self.path.is_dir():
            for p in self.path.iterdir():
                if p.is_file() and not p.name.startswith(".") and is_image_name(p):
                    self._files[p.stem] = p.name
            self._records = {r["file"]: r for r in read_manifest(self.path)}

    def __len__(self) -> int:
        return len(self._files)

    def find(self, stem: str) -> str | None:
        """The file name saved under ``stem`` (any image extension), or None."""
        return self._files.get(stem)

    def has_record(self, name: str) -> bool:
        return name in self._records

    def find_digest(self, digest: str) -> str | None:
        """The file whose content has this SHA-256, or None."""
        if self._digests is None:
            self._digests = {}
            for name in self._files.values():
                record = self._records.get(name)
                sha = record.get("sha256") if record else None
                self._digests[sha or file_digest(self.path / name)] = name
        return self._digests.get(digest)

    def remove_stale_temps(self) -> int:
        """Delete temporary files that a crashed run left over an hour ago; return how many."""
        if not self.path.is_dir():
            return 0
        now, removed = time.time(), 0
        for p in self.path.iterdir():
            if _is_stale_temp(p, now):
                p.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info(
                "%s: removed %d temporary file(s) left by an interrupted run", self.path, removed
            )
        return removed

    def save(self, stem: str, data: bytes, record: dict) -> dict:
        """Check ``data`` decodes, write it as ``<stem>.<ext>`` atomically, append its line.

        Raises :class:`helpers.images.ImageError` (nothing written) if it is not an image.
        """
        pixels = decode_image(data)
        name = stem + EXTENSIONS.get(sniff_image_type(data) or "", ".jpg")
        write_bytes_atomic(self.path / name, data)
        digest = hashlib.sha256(data).hexdigest()
        return self._remember(name, digest, len(data), pixels.shape, record)

    def add_record(self, name: str, record: dict) -> dict:
        """Write the missing manifest line of a file that is already in the folder."""
        path = self.path / name
        shape = read_image(path).shape
        return self._remember(name, file_digest(path), path.stat().st_size, shape, record)

    def _remember(self, name: str, digest: str, size: int, shape, record: dict) -> dict:
        """Append the full record of a saved file and update the indexes."""
        full = {
            "file": name,
            "tag": self.tag,
            **record,
            "width": int(shape[1]),
            "height": int(shape[0]),
            "bytes": size,
            "sha256": digest,
            "saved_at": utc_iso(),
        }
        append_manifest(self.path, full)
        self._files[Path(name).stem] = name
        self._records[name] = full
        if self._digests is not None:
            self._digests.setdefault(digest, name)
        return full
