"""hashtag scrape: the real instaloader and instalooter, driven by Instagram's answers, offline.

The answers in tests/data/instagram/ are written in the shapes the two libraries
parse (instaloader 4.16: i.instagram.com web_info, the GraphQL hashtag feed, a
post's metadata; instalooter 2.4.4: window._sharedData pages and its query_id
feed) and in the words Instagram refuses with today (429, 401 "Please wait a few
minutes", login_required, checkpoint_required). ``responses`` intercepts every
requests session; a request to any URL not registered fails the test.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import json
import os
import pickle
import random
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from PIL import Image

from helpers import manifest as manifest_module
from helpers import scrape as scrape_module
from helpers.manifest import MANIFEST, append_manifest, caption_hashtags, read_manifest
from helpers.scrape import (
    Backoff,
    InstagramChanged,
    LoginFailed,
    add_commands,
    open_backend,
    read_session_file,
    scrape,
    summary,
)

instaloader = pytest.importorskip("instaloader")
pytest.importorskip("instalooter")

DATA = Path(__file__).parent / "data" / "instagram"
WEB_INFO = "https://i.instagram.com/api/v1/tags/web_info/"
GRAPHQL = "https://www.instagram.com/graphql/query"
LOOTER_FEED = "https://www.instagram.com/graphql/query/"
HOME = "https://www.instagram.com/"
FEED_QUERY_HASH = "9b498c08113f1e09617a1703c22b2f32"  # Hashtag.get_posts_resumable in 4.16
POST_DOC_ID = "27128499623469141"  # Post metadata in 4.16
PAGE2, PAGE3 = "QVFCcGFnZTJfY3Vyc29y", "QVFCcGFnZTNfY3Vyc29y"
COOKIES = {
    "sessionid": "5098765432%3AqZ1fakeSession%3A12",
    "csrftoken": "kq9Tcsrf",
    "ds_user_id": "5098765432",
    "mid": "ZmFrZQ",
    "ig_did": "0D1E-FAKE",
}
PAGE1_PICTURES = {"C8bQx2LMq1A.jpg", "C8bPw7kNa2B_1.jpg", "C8bPw7kNa2B_3.jpg", "C8bNu0iLy4D.jpg"}


def answer(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def ok(name: str) -> tuple[int, dict]:
    return 200, answer(name)


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (seed * 37 % 256, seed * 11 % 256, 90)).save(buf, "JPEG")
    return buf.getvalue()


class Clock:
    """Stands in for time.sleep: remembers what would have been slept."""

    def __init__(self):
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def ig():
    """Instagram as recorded; any request to an unregistered URL fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
        stray = [
            c.request.url
            for c in rsps.calls
            if isinstance(c.response, requests.ConnectionError)
            and "match any registered mock" in str(c.response)
        ]
    assert not stray, f"requests nobody recorded an answer for: {stray}"


@pytest.fixture
def cdn(ig):
    """Every picture URL in the recorded answers serves its own small JPEG."""
    text = "".join(p.read_text() for p in sorted(DATA.iterdir()))
    urls = sorted(set(re.findall(r'https://scontent[^"\\\s]+\.jpg\?[^"\\\s]+', text)))
    for seed, url in enumerate(urls):
        ig.add(responses.GET, url, body=jpeg(seed), content_type="image/jpeg")
    return urls


@pytest.fixture
def session_file(tmp_path):
    """A session file written by instaloader itself, as 'instaloader --login USER' leaves one."""
    loader = instaloader.Instaloader(quiet=True)
    loader.context.load_session("workshop_user", dict(COOKIES))
    path = tmp_path / "session-workshop_user"
    loader.save_session_to_file(str(path))
    loader.close()
    return path


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Point config and cache dirs into tmp, so a real session file or cache is never used."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def serve_feed(ig, script: dict) -> list:
    """Answer instaloader's GraphQL hashtag feed per cursor, in turn (the last answer repeats)."""
    asked = []

    def reply(request):
        query = parse_qs(urlsplit(request.url).query)
        assert query["query_hash"] == [FEED_QUERY_HASH]
        cursor = json.loads(query["variables"][0]).get("after")
        asked.append(cursor)
        answers = script[cursor]
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    ig.add_callback(responses.GET, GRAPHQL, callback=reply)
    return asked


def serve_post_metadata(ig, answers: list | None = None) -> None:
    """The carousel's full metadata (instaloader asks for it: the feed lists no children)."""
    answers = answers or [ok("instaloader_post_carousel.json")]

    def reply(request):
        form = parse_qs(request.body)
        assert form["doc_id"] == [POST_DOC_ID]
        assert json.loads(form["variables"][0])["shortcode"] == "C8bPw7kNa2B"
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    ig.add_callback(responses.POST, GRAPHQL, callback=reply)


def paleo(ig, script: dict | None = None, carousel: list | None = None) -> list:
    """#paleo as instaloader sees it: web_info, three feed pages, one carousel's metadata."""
    ig.add(responses.GET, WEB_INFO, json=answer("instaloader_web_info.json"))
    serve_post_metadata(ig, carousel)
    return serve_feed(
        ig,
        script
        or {
            None: [ok("instaloader_feed_page1.json")],
            PAGE2: [ok("instaloader_feed_page2.json")],
            PAGE3: [ok("instaloader_feed_page3.json")],
        },
    )


def run(backend, dest, tags=("paleo",), n=50, clock=None, retries=2, **kwargs):
    backoff = Backoff(retries=retries, sleep=clock or Clock(), rng=random.Random(7))
    return scrape(list(tags), backend, dest, n, backoff=backoff, **kwargs)


def logged_in(session_file, clock=None, **kwargs):
    return open_backend(
        "instaloader", session_file=session_file, sleep=clock or Clock(), pause=False, **kwargs
    )


def pictures(tag_dir: Path) -> set[str]:
    return {p.name for p in tag_dir.iterdir() if p.name != MANIFEST}


def assert_consistent(tag_dir: Path) -> None:
    """Only whole pictures; each has one current manifest line with its true hash, and no line
    names a missing file twice."""
    names = pictures(tag_dir)
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    records = read_manifest(tag_dir, existing_only=False)
    assert {r["file"] for r in records} == names
    for r in records:
        assert hashlib.sha256((tag_dir / r["file"]).read_bytes()).hexdigest() == r["sha256"]


# ---------------------------------------------------------------- instaloader, the happy path


def test_photos_and_carousel_pictures_are_saved_videos_passed_over(ig, cdn, session_file, tmp_path):
    asked = paleo(ig)
    dest = tmp_path / "hashtags"
    [report] = run(logged_in(session_file), dest, n=4)

    assert asked == [None]  # four pictures are on the first page: no second page asked for
    assert (report.status, report.saved, report.skipped, report.failed, report.videos) == (
        "ok",
        4,
        0,
        0,
        2,
    )
    assert sorted(p.name for p in dest.iterdir()) == ["paleo"]  # instaloader wrote nothing
    assert pictures(dest / "paleo") == PAGE1_PICTURES
    assert_consistent(dest / "paleo")

    records = {r["file"]: r for r in read_manifest(dest / "paleo")}
    first = records["C8bQx2LMq1A.jpg"]
    assert first["shortcode"] == "C8bQx2LMq1A" and first["index"] is None
    assert first["post_url"] == "https://www.instagram.com/p/C8bQx2LMq1A/"
    assert first["image_url"].startswith("https://scontent-fra5-1.cdninstagram.com/")
    assert first["taken_at"] == "2024-07-01T10:33:20Z"
    assert first["caption"].startswith("Sunday brunch")
    assert first["hashtags"] == ["paleo", "keto", "grainfree", "wholefood"]
    assert (first["width"], first["height"], first["backend"]) == (30, 20, "instaloader")
    assert first["bytes"] == (dest / "paleo" / "C8bQx2LMq1A.jpg").stat().st_size
    assert records["C8bPw7kNa2B_3.jpg"]["index"] == 3
    assert records["C8bPw7kNa2B_3.jpg"]["hashtags"] == ["paleo", "mealprep", "whole30"]
    assert records["C8bNu0iLy4D.jpg"]["caption"] is None
    assert records["C8bNu0iLy4D.jpg"]["hashtags"] == []
    manifest_text = (dest / "paleo" / MANIFEST).read_text()
    assert COOKIES["sessionid"] not in manifest_text and "kq9Tcsrf" not in manifest_text


def test_videos_flag_keeps_video_covers(ig, cdn, session_file, tmp_path):
    paleo(ig)
    [report] = run(logged_in(session_file), tmp_path, n=6, videos=True)
    assert (report.saved, report.videos) == (6, 0)
    covers = {r["file"] for r in read_manifest(tmp_path / "paleo") if r["is_video_cover"]}
    assert covers == {"C8bPw7kNa2B_2.jpg", "C8bOv1jMz3C.jpg"}


def test_pages_are_fetched_only_until_n_new_pictures(ig, cdn, session_file, tmp_path):
    asked = paleo(ig)
    [report] = run(logged_in(session_file), tmp_path, n=7)
    assert asked == [None, PAGE2]  # page 3 is never asked for
    assert (report.saved, report.status, report.result()) == (7, "ok", "done")


def test_a_short_feed_ends_the_hashtag_without_error(ig, cdn, session_file, tmp_path):
    asked = paleo(ig)
    [report] = run(logged_in(session_file), tmp_path, n=50)
    assert asked == [None, PAGE2, PAGE3]
    assert (report.saved, report.posts, report.status) == (10, 10, "ok")
    assert report.result() == "the feed ended after 10 posts"


def test_instaloader_paces_its_requests_through_our_sleep(ig, cdn, session_file, tmp_path):
    paleo(ig)
    clock = Clock()
    backend = open_backend("instaloader", session_file=session_file, sleep=clock, pause=True)
    run(backend, tmp_path, n=4)
    asked_instagram = [
        c
        for c in ig.calls
        if "instagram.com/" in c.request.url and "cdninstagram" not in c.request.url
    ]
    assert len(clock.slept) == len(asked_instagram) == 3  # web_info, feed page, carousel
    assert all(0 <= s <= 15 for s in clock.slept)


def test_feed_without_hashtag_data_falls_back_to_the_top_posts(ig, cdn, session_file, tmp_path):
    paleo(ig, {None: [ok("instaloader_feed_null.json")]})
    ig.add(
        responses.GET,
        "https://www.instagram.com/explore/tags/paleo/",
        status=404,
        body="<html>Page Not Found</html>",
        content_type="text/html",
    )
    [report] = run(logged_in(session_file), tmp_path, n=50)
    assert pictures(tmp_path / "paleo") == {
        "C7tT1aAaa1G.jpg",
        "C7tT2bBbb2H_1.jpg",
        "C7tT2bBbb2H_2.jpg",
    }
    assert (report.status, report.saved, report.videos) == ("ok", 3, 1)
    notes = " ".join(report.notes)
    assert "used the top posts" in notes and "Instagram stopped paging" in notes
    assert_consistent(tmp_path / "paleo")


# ---------------------------------------------------------------- when Instagram says no


def test_a_429_is_waited_out_with_jitter_then_the_feed_goes_on(ig, cdn, session_file, tmp_path):
    asked = paleo(
        ig,
        {
            None: [ok("instaloader_feed_page1.json")],
            PAGE2: [(429, {}), ok("instaloader_feed_page2.json")],
            PAGE3: [ok("instaloader_feed_page3.json")],
        },
    )
    clock = Clock()
    [report] = run(logged_in(session_file), tmp_path, n=50, clock=clock)
    assert asked == [None, PAGE2, PAGE2, PAGE3]
    assert (report.status, report.saved, report.failed) == ("ok", 10, 0)
    assert len(clock.slept) == 1 and 15 <= clock.slept[0] <= 45  # 30 s x jitter 0.5-1.5


def test_a_429_while_reading_a_carousel_keeps_the_carousel(ig, cdn, session_file, tmp_path):
    paleo(ig, carousel=[(429, {}), ok("instaloader_post_carousel.json")])
    clock = Clock()
    [report] = run(logged_in(session_file), tmp_path, n=4, clock=clock)
    assert pictures(tmp_path / "paleo") == PAGE1_PICTURES
    assert (report.saved, report.failed, len(clock.slept)) == (4, 0, 1)


def test_please_wait_backs_off_then_stops_cleanly_with_what_was_saved(
    ig, cdn, session_file, tmp_path
):
    paleo(
        ig,
        {
            None: [ok("instaloader_feed_page1.json")],
            PAGE2: [(401, answer("answer_please_wait.json"))],
        },
    )
    clock = Clock()
    paleo_report, vegan_report = run(
        logged_in(session_file), tmp_path, ("paleo", "vegan"), n=50, clock=clock, retries=2
    )
    assert paleo_report.status == "rate limited"
    assert "Please wait a few minutes" in paleo_report.message
    assert paleo_report.saved == 4
    assert len(clock.slept) == 2 and 15 <= clock.slept[0] <= 45 and 45 <= clock.slept[1] <= 135
    assert (vegan_report.status, vegan_report.message) == ("not started", "stopped after #paleo")
    assert pictures(tmp_path / "paleo") == PAGE1_PICTURES
    assert_consistent(tmp_path / "paleo")
    text = summary([paleo_report, vegan_report])
    assert "#vegan" in text and "Wait 15-30 minutes" in text and "saved photos are skipped" in text


@pytest.mark.parametrize(
    "refusal",
    [
        {"status": 302, "headers": {"Location": "https://www.instagram.com/accounts/login/"}},
        {"status": 401, "json": answer("answer_login_required.json")},
    ],
    ids=["redirect-to-login", "401-login_required"],
)
def test_without_a_session_the_answer_is_login_required(ig, tmp_path, refusal):
    ig.add(responses.GET, WEB_INFO, **refusal)
    backend = open_backend("instaloader", sleep=Clock(), pause=False)
    reports = run(backend, tmp_path, ("paleo", "keto"))
    assert [r.status for r in reports] == ["login required", "not started"]
    assert "instaloader --login YOUR_USERNAME" in reports[0].hint
    assert not (tmp_path / "paleo").exists()


def test_a_logged_out_session_says_to_make_a_new_one(ig, session_file, tmp_path):
    ig.add(
        responses.GET,
        WEB_INFO,
        status=302,
        headers={"Location": "https://www.instagram.com/accounts/login/?next=%2F"},
    )
    [report] = run(logged_in(session_file), tmp_path)
    assert (report.status, report.message) == (
        "login required",
        "Instagram logged this session out",
    )
    assert "make a new session file" in report.hint


def _login_page(ig, status: int, body: dict) -> None:
    ig.add(
        responses.GET,
        HOME,
        body="<html></html>",
        content_type="text/html",
        headers={"Set-Cookie": "csrftoken=kq9Tlogin; Domain=.instagram.com; Path=/; Secure"},
    )
    ig.add(
        responses.POST,
        "https://www.instagram.com/api/v1/web/accounts/login/ajax/",
        status=status,
        json=body,
    )


@pytest.mark.parametrize(
    "status,body,words",
    [
        (200, "answer_wrong_password.json", "Instagram refused the login"),
        (400, "answer_checkpoint.json", "Instagram asks to confirm this login"),
    ],
)
def test_bad_password_and_checkpoint_are_told_apart_and_the_password_goes_nowhere(
    ig, tmp_path, capsys, caplog, status, body, words
):
    secret = "correct-horse-battery-staple"
    _login_page(ig, status, answer(body))
    asked = []
    with pytest.raises(LoginFailed) as err:
        open_backend(
            "instaloader",
            username="workshop_user",
            sleep=Clock(),
            pause=False,
            ask_password=lambda prompt: asked.append(prompt) or secret,
        )
    assert words in err.value.message
    assert "never stored" in asked[0]
    out = capsys.readouterr()
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for place in (str(err.value), out.out, out.err, caplog.text, written.decode("latin-1")):
        assert secret not in place


def test_a_rejected_two_factor_code_is_a_failed_login(ig, tmp_path):
    _login_page(
        ig,
        400,
        {
            "message": "",
            "two_factor_required": True,
            "status": "fail",
            "two_factor_info": {"two_factor_identifier": "2fa-id-123", "username": "workshop_user"},
        },
    )
    ig.add(
        responses.POST,
        "https://www.instagram.com/accounts/login/ajax/two_factor/",
        status=400,
        json={"message": "Please check the security code and try again.", "status": "fail"},
    )
    codes = []
    with pytest.raises(LoginFailed, match="security code") as err:
        open_backend(
            "instaloader",
            username="workshop_user",
            sleep=Clock(),
            pause=False,
            ask_password=lambda prompt: "pw",
            ask_code=lambda p: codes.append(p) or "123",
        )
    assert codes == ["Two-factor code for Instagram: "]
    assert "2FA code" in err.value.hint


def test_feedback_required_is_a_block_and_is_not_retried(ig, session_file, tmp_path):
    ig.add(
        responses.GET,
        WEB_INFO,
        status=400,
        json={
            "message": "feedback_required",
            "spam": True,
            "feedback_title": "Try Again Later",
            "status": "fail",
        },
    )
    clock = Clock()
    [report] = run(logged_in(session_file), tmp_path, clock=clock)
    assert (report.status, clock.slept) == ("blocked", [])
    assert "Stop for today" in report.hint


def test_an_empty_hashtag_is_reported_and_the_next_one_goes_on(ig, cdn, session_file, tmp_path):
    def web_info(request):
        tag = parse_qs(urlsplit(request.url).query)["tag_name"][0]
        name = (
            "instaloader_web_info_empty.json"
            if tag == "quietesttag"
            else "instaloader_web_info.json"
        )
        return 200, {"Content-Type": "application/json"}, json.dumps(answer(name))

    ig.add_callback(responses.GET, WEB_INFO, callback=web_info)
    serve_post_metadata(ig)

    def feed(request):
        tag = json.loads(parse_qs(urlsplit(request.url).query)["variables"][0])["tag_name"]
        name = (
            "instaloader_feed_empty.json" if tag == "quietesttag" else "instaloader_feed_page1.json"
        )
        return 200, {"Content-Type": "application/json"}, json.dumps(answer(name))

    ig.add_callback(responses.GET, GRAPHQL, callback=feed)
    empty, full = run(logged_in(session_file), tmp_path, ("quietesttag", "paleo"), n=4)
    assert (empty.status, empty.saved) == ("empty", 0)
    assert "no posts" in empty.message and "Try another hashtag" in empty.hint
    assert (full.status, full.saved) == ("ok", 4)


def test_an_unknown_hashtag_is_not_found_and_the_next_one_goes_on(ig, cdn, session_file, tmp_path):
    ig.add(
        responses.GET,
        WEB_INFO,
        status=404,
        json={"message": "", "status": "fail"},
        match=[
            responses.matchers.query_param_matcher({"tag_name": "nosuchtag123"}, strict_match=False)
        ],
    )
    paleo(ig)
    missing, found = run(logged_in(session_file), tmp_path, ("nosuchtag123", "paleo"), n=2)
    assert (missing.status, found.status, found.saved) == ("not found", "ok", 2)
    assert "Check the spelling" in missing.hint


def test_network_down_is_its_own_message(ig, session_file, tmp_path):
    ig.add(
        responses.GET,
        WEB_INFO,
        body=requests.ConnectionError(
            "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution"
        ),
    )
    clock = Clock()
    [report] = run(logged_in(session_file), tmp_path, clock=clock, retries=2)
    assert report.status == "network"
    assert report.message.startswith("cannot reach Instagram")
    assert "internet connection" in report.hint
    assert len(clock.slept) == 2 and max(clock.slept) <= 22.5  # short waits: 5 s then 15 s


def test_ctrl_c_stops_cleanly_and_later_hashtags_are_not_started(
    ig, cdn, session_file, tmp_path, monkeypatch
):
    paleo(ig)
    backend = logged_in(session_file)
    real_download = backend.download

    def interrupted(url):
        if "c8bnu0ily4d" in url:
            raise KeyboardInterrupt
        return real_download(url)

    monkeypatch.setattr(backend, "download", interrupted)
    first, second = run(backend, tmp_path, ("paleo", "keto"), n=50)
    assert (first.status, first.saved, second.status) == ("interrupted", 3, "not started")
    assert_consistent(tmp_path / "paleo")


def test_a_full_disk_stops_cleanly_with_what_was_saved(
    ig, cdn, session_file, tmp_path, monkeypatch
):
    paleo(ig)
    real_write, writes = manifest_module.write_bytes_atomic, []

    def fills_up(path, data):
        writes.append(path)
        if len(writes) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(manifest_module, "write_bytes_atomic", fills_up)
    first, second = run(logged_in(session_file), tmp_path, ("paleo", "keto"))
    assert (first.status, first.saved, second.status) == ("cannot write", 2, "not started")
    assert "No space left on device" in first.message and "disk space" in first.hint
    assert_consistent(tmp_path / "paleo")


# ---------------------------------------------------------------- crash, then resume


class Crash(Exception):
    """The process dying (power cut, kill -9) at a chosen moment."""


def test_a_crash_mid_run_then_a_resume_loses_and_duplicates_nothing(
    ig, cdn, session_file, tmp_path, monkeypatch
):
    paleo(ig)
    tag_dir = tmp_path / "paleo"
    real_replace, renames = os.replace, []

    def dies_on_the_sixth_rename(src, dst):
        renames.append(dst)
        if len(renames) == 6:
            raise Crash("power cut while renaming")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_on_the_sixth_rename)
    with pytest.raises(Crash):
        run(logged_in(session_file), tmp_path, n=50)
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(pictures(tag_dir)) == 5  # the sixth is neither there nor half there
    assert_consistent(tag_dir)

    # The other ways a crash or a person can leave the folder:
    lines = (tag_dir / MANIFEST).read_text().splitlines(keepends=True)
    unrecorded = json.loads(lines[-1])["file"]  # written, then died before its line
    (tag_dir / MANIFEST).write_text("".join(lines[:-1]) + '{"file": "C8aZqk')  # torn line
    removed = json.loads(lines[0])["file"]
    (tag_dir / removed).unlink()  # a line whose file is gone
    leftover = tag_dir / ".C8aZrkKx3E.jpg.k2j4.tmp"  # kill -9 mid-write, an hour ago
    leftover.write_bytes(jpeg(99)[:50])
    os.utime(leftover, (1_000_000_000, 1_000_000_000))

    [report] = run(logged_in(session_file), tmp_path, n=50)
    assert (report.status, report.skipped, report.saved, report.failed) == ("ok", 4, 6, 0)
    assert len(pictures(tag_dir)) == 10 and not leftover.exists()
    assert_consistent(tag_dir)
    raw = [
        json.loads(line)
        for line in (tag_dir / MANIFEST).read_text().splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert [r["file"] for r in raw].count(unrecorded) == 1  # its line was written on resume
    assert [r["file"] for r in raw].count(removed) == 2  # the old line, then the new download
    downloads = [c.request.url for c in ig.calls if "cdninstagram" in c.request.url]
    assert len(downloads) == 6 + 6  # 6 in the first run (the 6th died on rename), 6 now
    stems = [Path(n).stem for n in pictures(tag_dir)]
    assert len(stems) == len(set(stems))


# ---------------------------------------------------------------- instalooter


def serve_instalooter(ig, home: str, feed: list, post_page: list | None = None) -> list:
    """instalooter's world: its home page, its query_id feed and a carousel's page, each
    answering in turn (the last answer repeats); an answer is (status, body[, headers])."""
    ig.add(responses.GET, HOME, body=(DATA / home).read_text(), content_type="text/html")
    asked = []

    def in_turn(answers, content_type):
        def reply(request):
            status, body, *headers = answers.pop(0) if len(answers) > 1 else answers[0]
            text = body if isinstance(body, str) else json.dumps(body)
            return status, {"Content-Type": content_type, **(headers[0] if headers else {})}, text

        return reply

    def feed_reply(request):
        assert "query_id=17882293912014529" in request.url
        asked.append(request.url)
        return in_turn(feed, "application/json")(request)

    ig.add_callback(responses.GET, LOOTER_FEED, callback=feed_reply)
    carousel = (DATA / "instalooter_post_carousel_2020.html").read_text()
    ig.add_callback(
        responses.GET,
        "https://www.instagram.com/p/C8bPw7kNa2B/",
        callback=in_turn(post_page or [(200, carousel)], "text/html"),
    )
    return asked


def test_instalooter_works_against_the_answers_instagram_gave_in_2020(ig, cdn, tmp_path):
    asked = serve_instalooter(
        ig,
        "instalooter_home_2020.html",
        [ok("instalooter_feed_page1.json"), ok("instalooter_feed_page2.json")],
    )
    clock = Clock()
    backend = open_backend("instalooter", sleep=clock, pause=True)
    [report] = run(backend, tmp_path / "hashtags", n=50)
    assert len(asked) == 2
    assert (report.status, report.saved, report.videos) == ("ok", 5, 2)
    assert pictures(tmp_path / "hashtags" / "paleo") == {
        "C8bQx2LMq1A.jpg",
        "C8bPw7kNa2B_1.jpg",
        "C8bPw7kNa2B_3.jpg",
        "C8aZpkKx1E.jpg",
        "C8aZqkKx2E.jpg",
    }
    assert {r["backend"] for r in read_manifest(tmp_path / "hashtags" / "paleo")} == {"instalooter"}
    assert clock.slept == [2.0, 2.0]  # its pause between pages, through our sleep
    assert not (tmp_path / "cache").exists()  # no cookie jar or user-agent file written


def test_instalooter_keeps_a_carousel_whose_page_first_answered_429(ig, cdn, tmp_path):
    carousel = (DATA / "instalooter_post_carousel_2020.html").read_text()
    serve_instalooter(
        ig,
        "instalooter_home_2020.html",
        [ok("instalooter_feed_page1.json")],
        post_page=[(429, ""), (200, carousel)],
    )
    clock = Clock()
    [report] = run(
        open_backend("instalooter", sleep=clock, pause=False), tmp_path, n=3, clock=clock
    )
    assert pictures(tmp_path / "paleo") == {
        "C8bQx2LMq1A.jpg",
        "C8bPw7kNa2B_1.jpg",
        "C8bPw7kNa2B_3.jpg",
    }
    assert (report.saved, report.failed, len(clock.slept)) == (3, 0, 1)


def test_instalooter_against_todays_home_page_says_to_use_instaloader(ig, tmp_path):
    serve_instalooter(ig, "home_today.html", [ok("instalooter_feed_page1.json")])
    [report] = run(open_backend("instalooter", sleep=Clock()), tmp_path)
    assert report.status == "unreadable answer"
    assert "window._sharedData" in report.message
    assert "--backend instaloader" in report.hint and "InstaLooter#371" in report.hint


def test_instalooter_please_wait_stops_instead_of_looping(ig, tmp_path):
    asked = serve_instalooter(
        ig, "instalooter_home_2020.html", [(401, answer("answer_please_wait.json"))]
    )
    clock = Clock()
    [report] = run(open_backend("instalooter", sleep=clock), tmp_path, clock=clock, retries=2)
    assert report.status == "rate limited" and "Please wait" in report.message
    assert len(asked) == 3 and len(clock.slept) == 2  # instalooter alone would retry forever


def test_instalooter_redirect_to_login_is_login_required(ig, tmp_path):
    serve_instalooter(
        ig,
        "instalooter_home_2020.html",
        [(302, "", {"Location": "https://www.instagram.com/accounts/login/"})],
    )
    [report] = run(open_backend("instalooter", sleep=Clock()), tmp_path)
    assert report.status == "login required"


def test_instalooter_login_today_fails_with_a_clear_message(ig, tmp_path):
    ig.add(
        responses.GET, HOME, body=(DATA / "home_today.html").read_text(), content_type="text/html"
    )
    with pytest.raises(InstagramChanged) as err:
        open_backend(
            "instalooter", username="workshop_user", ask_password=lambda p: "pw-123", sleep=Clock()
        )
    assert "could not log in" in err.value.message and "pw-123" not in str(err.value)
    assert "--backend instaloader" in err.value.hint


# ---------------------------------------------------------------- session files and manifest


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_session_file_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "session-evil"
    evil.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(LoginFailed, match="not an instaloader session file"):
        read_session_file(evil)
    assert not marker.exists()


def test_session_files_in_instaloaders_format_or_json(tmp_path, session_file):
    assert read_session_file(session_file) == COOKIES
    exported = tmp_path / "cookies.json"
    exported.write_text(
        json.dumps(
            [{"name": k, "value": v, "domain": ".instagram.com"} for k, v in COOKIES.items()]
        )
    )
    assert read_session_file(exported) == COOKIES
    logged_out = tmp_path / "logged-out.json"
    logged_out.write_text(json.dumps({"csrftoken": "x", "sessionid": ""}))
    with pytest.raises(LoginFailed, match="no sessionid cookie"):
        read_session_file(logged_out)
    with pytest.raises(LoginFailed, match="cannot read the session file"):
        read_session_file(tmp_path / "nope")


def test_manifest_survives_a_torn_line_and_keeps_one_record_per_file(tmp_path, caplog):
    append_manifest(tmp_path, {"file": "a.jpg", "v": 1})
    with open(tmp_path / MANIFEST, "a") as f:
        f.write('{"file": "b.j')  # the process died mid-line
    append_manifest(tmp_path, {"file": "a.jpg", "v": 2})
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert read_manifest(tmp_path) == [{"file": "a.jpg", "v": 2}]
    assert "not JSON" in caplog.text
    assert (tmp_path / MANIFEST).read_text().splitlines()[-1] == '{"file": "a.jpg", "v": 2}'


def test_caption_hashtags_are_lowercased_once_each_in_order():
    assert caption_hashtags("Brunch #Paleo #keto\n#paleo #crème_brûlée!") == [
        "paleo",
        "keto",
        "crème_brûlée",
    ]
    assert caption_hashtags(None) == []


# ---------------------------------------------------------------- the command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hashtag")
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def test_scrape_help_says_what_instagram_requires(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["scrape", "--help"])
    text = capsys.readouterr().out
    for words in (
        "logged-in accounts only",
        "instaloader --login YOUR_USERNAME",
        "--session-file",
        "Please wait a few",
        "never stored",
        "import-urls",
        "skipped",
        "InstaLooter#371",
    ):
        assert words in text


def test_cli_scrape_end_to_end(ig, cdn, session_file, tmp_path, capsys, monkeypatch):
    paleo(ig)
    slept = Clock()
    monkeypatch.setattr(scrape_module, "_pause", slept)
    args = parser().parse_args(
        [
            "scrape",
            "#Paleo",
            "-n",
            "3",
            "--dest",
            str(tmp_path / "h"),
            "--session-file",
            str(session_file),
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"#paleo\s+3\s+3\s+0\s+0\s+done", out)
    assert "#paleo [3/3]" in out and slept.slept  # progress shown, requests paced
    rc = args.func(args)  # again: three more, the first three skipped
    assert rc == 0 and re.search(r"#paleo\s+3\s+3\s+3\s+0\s+done", capsys.readouterr().out)


def test_cli_reports_every_hashtag_when_login_fails(ig, tmp_path, capsys):
    _login_page(ig, 200, answer("answer_wrong_password.json"))
    args = parser().parse_args(
        ["scrape", "paleo", "keto", "--login", "workshop_user", "--dest", str(tmp_path)]
    )
    import getpass

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(getpass, "getpass", lambda prompt: "hunter2-secret")
        assert args.func(args) == 1
    out = capsys.readouterr().out
    assert re.search(r"#paleo\s+50\s+0\s+0\s+0\s+login failed", out)
    assert re.search(r"#keto\s+50\s+0\s+0\s+0\s+login failed", out)
    assert "hunter2-secret" not in out


def test_cli_refuses_what_is_not_a_hashtag(capsys):
    args = parser().parse_args(["scrape", "../etc"])
    assert args.func(args) == 2
    assert "not a hashtag" in capsys.readouterr().err
