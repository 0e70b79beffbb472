"""Pictures from elsewhere into a hashtag folder, for rooms where Instagram refuses.

``import_folder`` copies the pictures of a folder (a USB stick, a teacher's
scrape from home); ``import_urls`` downloads a list of picture URLs through
:func:`helpers.fetch.fetch_bytes`, under the same rules as the API (http(s)
only, no loopback or private addresses unless allowed, size and time limits,
content sniffed as a picture). Either way every picture is decoded before it
is kept, written atomically, and gets a line in ``manifest.jsonl``; a bad one
is reported and the others go on. Running either again skips what is there.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from helpers.fetch import MAX_BYTES, FetchError, FetchPolicy, fetch_bytes
from helpers.images import ImageError, list_images
from helpers.manifest import MANIFEST, TagFolder, read_manifest

DEFAULT_DEST = Path("hashtags")
_SAFE_STEM = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_CARRIED = (
    "shortcode",
    "index",
    "post_url",
    "image_url",
    "is_video_cover",
    "taken_at",
    "caption",
    "hashtags",
)  # what a source folder's manifest line brings along


def _quiet(message: str) -> None:
    """An echo that says nothing."""


@dataclass
class ImportReport:
    """What one import did: counts and, for each failure, the source and the reason."""

    tag: str
    total: int = 0
    saved: int = 0
    skipped: int = 0  # already in the hashtag folder
    failed: int = 0
    ignored: int = 0  # files without a picture's name (import of a folder)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def fail(self, source: str, reason: str) -> None:
        self.failed += 1
        self.problems.append((source, reason))

    def summary(self) -> str:
        lines = [
            (
                f"#{self.tag}: {self.total} found, {self.saved} saved, {self.skipped} skipped "
                f"(already here), {self.failed} failed"
            )
        ]
        lines.extend(f"  failed: {source}: {reason}" for source, reason in self.problems)
        if self.ignored:
            lines.append(f"  {self.ignored} other file(s) without a picture's name left alone")
        return "\n".join(lines)


def _blank_record(backend: str, source: str) -> dict:
    """Manifest fields for a picture that did not come from a scrape."""
    return {
        "shortcode": None,
        "index": None,
        "post_url": None,
        "image_url": None,
        "is_video_cover": False,
        "taken_at": None,
        "caption": None,
        "hashtags": [],
        "backend": backend,
        "source": source,
    }


def _stem_for(path: Path, target: TagFolder, digest: str) -> str:
    """Keep a plain file name (a shortcode) when it is free, else name by content."""
    if _SAFE_STEM.match(path.stem) and target.find(path.stem) is None:
        return path.stem
    return digest[:16]


def _count_other_files(src: Path, pictures: list[Path]) -> int:
    """Visible files under ``src`` that are neither pictures nor its manifest."""
    picked = set(pictures)
    return sum(
        1
        for p in src.rglob("*")
        if p.is_file()
        and p not in picked
        and p.name != MANIFEST
        and not any(part.startswith(".") for part in p.relative_to(src).parts)
    )


def import_folder(
    folder: str | Path,
    tag: str,
    dest: str | Path = DEFAULT_DEST,
    max_bytes: int = MAX_BYTES,
    echo: Callable[[str], None] = _quiet,
) -> ImportReport:
    """Copy every picture under ``folder`` into ``dest/<tag>/``, checked, with manifest lines.

    Args:
        folder: searched recursively; hidden files are left out. If it has a
            ``manifest.jsonl``, each picture's caption, hashtags and post come along.
        tag: the hashtag of these pictures.
        dest: the folder of hashtag folders.
        max_bytes: larger files are refused.
        echo: called with one line per saved picture.

    Returns:
        The :class:`ImportReport`; damaged files are in its ``problems``.
    """
    src = Path(folder)
    if not src.is_dir():
        raise ValueError(f"no such folder: {src}")
    target = TagFolder(dest, tag)
    if target.path.exists() and src.resolve() == target.path.resolve():
        raise ValueError(f"{src} is already the folder of #{target.tag}")
    target.remove_stale_temps()
    carried = {r["file"]: r for r in read_manifest(src)}
    pictures = list_images(src)
    report = ImportReport(target.tag, ignored=_count_other_files(src, pictures))
    for path in pictures:
        source = path.relative_to(src).as_posix()
        report.total += 1
        try:
            if path.stat().st_size > max_bytes:
                report.fail(source, f"over the {max_bytes:,} byte limit")
                continue
            data = path.read_bytes()
        except OSError as exc:
            report.fail(source, f"cannot read: {exc.strerror or exc}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if target.find_digest(digest):
            report.skipped += 1
            continue
        record = _blank_record("import", source)
        record.update({k: v for k, v in carried.get(source, {}).items() if k in _CARRIED})
        try:
            saved = target.save(_stem_for(path, target, digest), data, record)
        except ImageError as exc:
            report.fail(source, str(exc))
            continue
        report.saved += 1
        echo(f"#{target.tag} {saved['file']} <- {source}")
    return report


def read_url_list(path: str | Path) -> list[str]:
    """The URLs of a text file (one per line; blank lines and '#' comments skipped), '-' = stdin."""
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the URL list {path}: {exc}") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def import_urls(
    urls: Iterable[str],
    tag: str,
    dest: str | Path = DEFAULT_DEST,
    policy: FetchPolicy | None = None,
    echo: Callable[[str], None] = _quiet,
) -> ImportReport:
    """Download picture URLs into ``dest/<tag>/`` under ``policy``, checked, with manifest lines.

    Args:
        urls: http(s) URLs of pictures; duplicates are fetched once.
        tag: the hashtag of these pictures.
        dest: the folder of hashtag folders.
        policy: the fetch limits (default ``FetchPolicy()``: public addresses only);
            ``FetchPolicy(allow_private=True)`` for a trusted local server.
        echo: called with one line per saved picture.

    Returns:
        The :class:`ImportReport`; each refused URL is in its ``problems`` with the reason.
    """
    policy = policy or FetchPolicy()
    target = TagFolder(dest, tag)
    target.remove_stale_temps()
    done = {
        r.get("source") for r in read_manifest(target.path) if r.get("backend") == "import-urls"
    }
    report = ImportReport(target.tag)
    for url in dict.fromkeys(urls):
        report.total += 1
        if url in done:
            report.skipped += 1
            continue
        try:
            data = fetch_bytes(url, policy)
        except FetchError as exc:
            report.fail(url, f"{exc} ({exc.code})")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if target.find_digest(digest):
            report.skipped += 1
            continue
        record = _blank_record("import-urls", url)
        record["image_url"] = url
        try:
            saved = target.save(digest[:16], data, record)
        except ImageError as exc:
            report.fail(url, f"{exc} (not_an_image)")
            continue
        report.saved += 1
        echo(f"#{target.tag} {saved['file']} <- {url}")
    return report
