"""hashtag import / import-urls: pictures from elsewhere, checked, with manifest lines, offline."""

from __future__ import annotations

import argparse
import hashlib
import io

import pytest
from PIL import Image

from helpers.fetch import FetchPolicy
from helpers.importing import import_folder, import_urls, read_url_list
from helpers.manifest import MANIFEST, append_manifest, read_manifest
from helpers.scrape import add_commands
from tests.loopback import LoopbackServer, redirect, respond, stream


def picture(color, fmt="JPEG", size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


RED, GREEN, BLUE = picture((200, 30, 30)), picture((30, 200, 30), "PNG"), picture((30, 30, 200))
CORRUPT = b"\xff\xd8\xff\xe0" + b"\x00garbage, not a JPEG at all" * 20  # JPEG magic, then junk


def files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)


def parser():
    p = argparse.ArgumentParser(prog="hashtag")
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


@pytest.fixture
def stick(tmp_path):
    """A folder as a participant might bring it: pictures, a damaged one, a copy, other files."""
    src = tmp_path / "stick"
    (src / "nested").mkdir(parents=True)
    (src / "sunset.jpg").write_bytes(RED)
    (src / "sunset copy.jpg").write_bytes(RED)
    (src / "beach.png").write_bytes(GREEN)
    (src / "nested" / "IMG_0042.JPG").write_bytes(BLUE)
    (src / "broken.jpg").write_bytes(CORRUPT)
    (src / "truncated.jpg").write_bytes(BLUE[: len(BLUE) // 2])
    (src / "notes.txt").write_text("not a picture")
    (src / ".thumbnail.jpg").write_bytes(RED)
    return src


def test_import_folder_copies_checked_pictures_and_reports_the_damaged(stick, tmp_path):
    dest = tmp_path / "hashtags"
    report = import_folder(stick, "#Sunset", dest)
    assert (report.total, report.saved, report.skipped, report.failed, report.ignored) == (
        6,
        3,
        1,
        2,
        1,
    )
    assert sorted(source for source, _ in report.problems) == ["broken.jpg", "truncated.jpg"]
    assert not report.ok and "broken.jpg" in report.summary()
    tag_dir = dest / "sunset"
    by_content = hashlib.sha256(RED).hexdigest()[:16] + ".jpg"  # "sunset copy" came first
    assert files(tag_dir) == ["IMG_0042.jpg", "beach.png", by_content]
    records = {r["file"]: r for r in read_manifest(tag_dir)}
    assert set(records) == set(files(tag_dir))
    for name, record in records.items():
        assert record["sha256"] == hashlib.sha256((tag_dir / name).read_bytes()).hexdigest()
        assert (record["backend"], record["tag"], record["width"]) == ("import", "sunset", 32)
    assert records["IMG_0042.jpg"]["source"] == "nested/IMG_0042.JPG"

    again = import_folder(stick, "sunset", dest)
    assert (again.saved, again.skipped, again.failed) == (0, 4, 2)
    assert len((tag_dir / MANIFEST).read_text().splitlines()) == 3


def test_import_brings_the_captions_of_a_scraped_folder_along(tmp_path):
    src = tmp_path / "from-home" / "paleo"
    src.mkdir(parents=True)
    (src / "C8bQx2LMq1A.jpg").write_bytes(RED)
    append_manifest(
        src,
        {
            "file": "C8bQx2LMq1A.jpg",
            "tag": "paleo",
            "shortcode": "C8bQx2LMq1A",
            "post_url": "https://www.instagram.com/p/C8bQx2LMq1A/",
            "caption": "Brunch #paleo #keto",
            "hashtags": ["paleo", "keto"],
            "taken_at": "2024-07-01T10:33:20Z",
            "backend": "instaloader",
            "sha256": "stale",
            "width": 1,
        },
    )
    report = import_folder(src, "paleo", tmp_path / "hashtags")
    [record] = read_manifest(tmp_path / "hashtags" / "paleo")
    assert report.saved == 1 and record["file"] == "C8bQx2LMq1A.jpg"
    assert (record["shortcode"], record["hashtags"], record["caption"]) == (
        "C8bQx2LMq1A",
        ["paleo", "keto"],
        "Brunch #paleo #keto",
    )
    assert record["backend"] == "import" and record["width"] == 32  # measured, not copied
    assert record["sha256"] == hashlib.sha256(RED).hexdigest()


def test_import_refuses_a_missing_folder_or_the_tag_folder_itself(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        import_folder(tmp_path / "nope", "x", tmp_path)
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="already the folder"):
        import_folder(tmp_path / "x", "x", tmp_path)


# ---------------------------------------------------------------- import-urls


@pytest.fixture(scope="module")
def server():
    with LoopbackServer() as site:
        site.routes.update(
            {
                "/red.jpg": respond(RED),
                "/red-again.jpg": respond(RED),
                "/blue.jpg": respond(BLUE),
                "/page.html": respond(
                    b"<!doctype html><html><body>Login</body></html>", "text/html"
                ),
                "/broken.jpg": respond(CORRUPT),
                "/huge.jpg": stream(RED[:4]),
                "/to-private": redirect(f"http://127.0.0.1:{site.port}/red.jpg"),
            }
        )
        yield site


TRUSTED_LOCALHOST = FetchPolicy(allow_hosts=frozenset({"localhost"}), read_timeout=2.0)


def test_import_urls_keeps_pictures_and_refuses_everything_unsafe(server, tmp_path):
    base = server.url
    urls = [
        "http://127.0.0.1/",
        "file:///etc/passwd",
        f"{base}/to-private",
        f"{base}/page.html",
        f"{base}/huge.jpg",
        f"{base}/broken.jpg",
        f"{base}/red.jpg",
        f"{base}/red.jpg",
        f"{base}/red-again.jpg",
        f"{base}/blue.jpg",
    ]
    report = import_urls(urls, "sunset", tmp_path, TRUSTED_LOCALHOST)
    assert (report.total, report.saved, report.skipped, report.failed) == (9, 2, 1, 6)
    reasons = dict(report.problems)
    assert reasons["http://127.0.0.1/"].endswith("(forbidden_address)")
    assert reasons["file:///etc/passwd"].endswith("(bad_url)")
    assert reasons[f"{base}/to-private"].endswith("(forbidden_address)")
    assert reasons[f"{base}/page.html"].endswith("(not_an_image)")
    assert reasons[f"{base}/huge.jpg"].endswith("(too_large)")
    assert reasons[f"{base}/broken.jpg"].endswith("(not_an_image)")
    tag_dir = tmp_path / "sunset"
    records = read_manifest(tag_dir)
    assert sorted(r["source"] for r in records) == [f"{base}/blue.jpg", f"{base}/red.jpg"]
    assert {r["file"] for r in records} == set(files(tag_dir))
    assert all(r["backend"] == "import-urls" and r["image_url"] == r["source"] for r in records)

    server.hits.clear()
    again = import_urls(urls, "sunset", tmp_path, TRUSTED_LOCALHOST)
    assert (again.saved, again.skipped) == (0, 3)
    assert "/red.jpg" not in server.hits and "/blue.jpg" not in server.hits  # not re-fetched


def test_private_addresses_only_with_allow_private(server, tmp_path):
    port = server.port
    local = f"http://127.0.0.1:{port}/blue.jpg"
    assert import_urls([local], "blue", tmp_path).failed == 1
    assert import_urls([local], "blue", tmp_path, FetchPolicy(allow_private=True)).saved == 1


def test_url_lists_skip_blank_lines_and_comments(tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "# from the workshop sheet\nhttps://example.org/a.jpg\n\n  https://x.org/b.png \n"
    )
    assert read_url_list(listing) == ["https://example.org/a.jpg", "https://x.org/b.png"]
    with pytest.raises(ValueError, match="cannot read the URL list"):
        read_url_list(tmp_path / "missing.txt")


def test_cli_import_urls_and_import(server, stick, tmp_path, capsys):
    port = server.port
    listing = tmp_path / "urls.txt"
    listing.write_text(f"http://127.0.0.1:{port}/blue.jpg\n")
    dest = str(tmp_path / "hashtags")
    args = parser().parse_args(["import-urls", str(listing), "--tag", "blue", "--dest", dest])
    assert args.func(args) == 1
    assert "forbidden_address" in capsys.readouterr().out
    args = parser().parse_args(
        ["import-urls", str(listing), "--tag", "blue", "--dest", dest, "--allow_private", "-q"]
    )
    assert args.func(args) == 0
    assert "1 saved" in capsys.readouterr().out

    args = parser().parse_args(["import", str(stick), "--tag", "sunset", "--dest", dest])
    assert args.func(args) == 1  # two damaged files: reported, the rest imported
    out = capsys.readouterr().out
    assert "3 saved" in out and "broken.jpg" in out and "truncated.jpg" in out
    args = parser().parse_args(["import", str(tmp_path / "nope"), "--tag", "x", "--dest", dest])
    assert args.func(args) == 2
