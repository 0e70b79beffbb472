"""Photos of Instagram hashtags, saved safely, with a plain answer when Instagram says no.

What Instagram requires today: hashtag pages are served to logged-in sessions
only, and an account or address that asks too fast is told to stop (HTTP 429,
or 401 "Please wait a few minutes before you try again"). So:

* Two backends only *list* posts; neither writes a file. ``instaloader``
  (maintained) asks ``i.instagram.com/api/v1/tags/web_info/`` for the hashtag,
  then its recent-posts GraphQL feed, or, when that feed is unreadable, the top
  posts that the web_info answer carries. ``instalooter`` (the original
  workshop's tool, last release 2020) reads ``window._sharedData`` and a
  ``query_id`` feed that Instagram no longer serves (althonos/InstaLooter#371).
* One downloader does the rest for both: at most N new photos per hashtag,
  files written under a temporary name and renamed, one manifest line per
  photo (:mod:`helpers.manifest`), resume from what is on disk, back-off with
  jitter on 429 / "please wait" / network errors, then a clean stop.
* Every refusal becomes a :class:`ScrapeError` with a message and a hint that
  says what to do; :class:`TagReport` keeps wanted / saved / skipped / failed
  and why, per hashtag.
* Passwords are read with ``getpass``, used once and never stored or logged;
  session files are read (never written) without running pickled code.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import importlib
import io
import json
import logging
import pickle
import random
import re
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

from helpers.images import ImageError
from helpers.manifest import TagFolder, caption_hashtags, normalize_tag, utc_iso

log = logging.getLogger(__name__)

DEFAULT_DEST = Path("hashtags")
BACKENDS = ("instaloader", "instalooter")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
POST_URL = "https://www.instagram.com/p/{}/"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)

LOGIN_HINT = (
    "Instagram shows hashtags to logged-in accounts only. Make a session file once with "
    "'instaloader --login YOUR_USERNAME' (it asks for the password and keeps only a "
    "session cookie), then run 'hashtag scrape TAG --login YOUR_USERNAME' "
    "(or --session-file FILE)."
)
SESSION_HINT = (
    "Log in at https://www.instagram.com in a browser, then make a new session file "
    "with 'instaloader --login YOUR_USERNAME'."
)
CHECKPOINT_HINT = (
    "Instagram wants to confirm it is you: log in at https://www.instagram.com in a "
    "browser with this account, follow its prompts, then make a new session file "
    "with 'instaloader --login YOUR_USERNAME'."
)
RATE_HINT = (
    "Instagram limits how fast one account or address may ask. Wait 15-30 minutes "
    "(longer if it happens again), close Instagram in browsers and the app, then run the "
    "same command again: saved photos are skipped. Fewer hashtags or a smaller -n help."
)
BLOCKED_HINT = (
    "Stop for today: the block usually lifts within a day, and asking again extends "
    "it. Meanwhile use the account normally in the app, or bring pictures in with "
    "'hashtag import' / 'hashtag import-urls'."
)
NETWORK_HINT = (
    "Check the internet connection (and proxy), then run the same command again: "
    "saved photos are skipped."
)
NOT_FOUND_HINT = (
    "Check the spelling (no spaces or punctuation). Instagram hides some hashtags "
    "(banned or restricted ones)."
)
EMPTY_HINT = (
    "Instagram showed no posts: the hashtag may be new, restricted, or hidden from this "
    "account. Try another hashtag, or 'hashtag import' / 'hashtag import-urls'."
)
CHANGED_HINT = (
    "Instagram changed what it sends. Try 'pip install -U instaloader', or bring "
    "pictures in with 'hashtag import FOLDER --tag TAG' or 'hashtag import-urls'."
)
BROWSER_HINT = (
    "Or log in at https://www.instagram.com in Firefox or Chrome and run 'instaloader "
    "--load-cookies firefox' (needs 'pip install browser_cookie3'): it makes the "
    "session file from the browser's cookies."
)
INSTALOOTER_HINT = (
    "instalooter 2.4.4 (2020) reads pages Instagram no longer serves "
    "(althonos/InstaLooter#371, #360). Use '--backend instaloader' with a session "
    "file, or 'hashtag import' / 'hashtag import-urls'."
)


# ---------------------------------------------------------------- errors


class ScrapeError(Exception):
    """Instagram or the network said no, in a way a person can act on."""

    kind = "error"
    stops_run = False  # the next hashtags would fail the same way
    retry = False  # worth waiting and asking again

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}" if self.hint else self.message


class LoginRequired(ScrapeError):
    """Instagram wants a logged-in session (or the session was logged out)."""

    kind, stops_run = "login required", True


class LoginFailed(ScrapeError):
    """Wrong password, 2FA code, checkpoint, or an unusable session file."""

    kind, stops_run = "login failed", True


class RateLimited(ScrapeError):
    """HTTP 429 or 401 "Please wait a few minutes"."""

    kind, stops_run, retry = "rate limited", True, True


class Blocked(ScrapeError):
    """feedback_required: the account is blocked from this for hours; asking again makes it worse."""

    kind, stops_run = "blocked", True


class NetworkDown(ScrapeError):
    """No connection to Instagram, or Instagram's servers erred (5xx)."""

    kind, stops_run, retry = "network", True, True


class NotFound(ScrapeError):
    """Instagram has no such hashtag."""

    kind = "not found"


class InstagramChanged(ScrapeError):
    """Instagram answered in a shape the backend cannot read."""

    kind, stops_run = "unreadable answer", True


class BackendMissing(ScrapeError):
    """The backend's package is not installed."""

    kind, stops_run = "not installed", True


class WriteFailed(ScrapeError):
    """A picture or manifest line could not be written (disk full, no permission)."""

    kind, stops_run = "cannot write", True


class FeedEnded(ScrapeError):
    """Instagram stopped paging (404 on a later page): keep what we have."""

    kind = "feed ended"


class PostFailed(ScrapeError):
    """One post could not be read; the others go on."""

    kind = "post failed"


class ImageFailed(ScrapeError):
    """One picture could not be downloaded; the others go on."""

    kind = "image failed"


_RUN_ERRORS = (
    LoginRequired,
    LoginFailed,
    RateLimited,
    Blocked,
    NetworkDown,
)  # never one post's problem


# ---------------------------------------------------------------- posts


@dataclass(frozen=True)
class Media:
    """One picture of a post: its URL, whether it is a video's cover, its carousel position."""

    url: str
    is_video: bool = False
    index: int | None = None  # 1-based position in a carousel, None for a single picture


@dataclass(frozen=True)
class Post:
    """What the downloader needs from any backend's post."""

    shortcode: str
    taken_at: datetime | None
    caption: str | None
    is_video: bool
    media: tuple[Media, ...]

    @property
    def url(self) -> str:
        return POST_URL.format(self.shortcode)

    @property
    def hashtags(self) -> list[str]:
        return caption_hashtags(self.caption)

    def stem(self, media: Media) -> str:
        """File name without extension: ``<shortcode>`` or ``<shortcode>_<k>``."""
        return self.shortcode if media.index is None else f"{self.shortcode}_{media.index}"

    def record(self, media: Media, backend: str) -> dict:
        """The manifest fields that come from the post (the folder adds file, size, hash)."""
        return {
            "shortcode": self.shortcode,
            "index": media.index,
            "post_url": self.url,
            "image_url": media.url,
            "is_video_cover": media.is_video,
            "taken_at": utc_iso(self.taken_at) if self.taken_at else None,
            "caption": self.caption,
            "hashtags": self.hashtags,
            "backend": backend,
        }


def _utc(timestamp) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), timezone.utc) if timestamp else None


# ---------------------------------------------------------------- back-off and reports


def _pause(seconds: float) -> None:
    """The real sleep (tests replace it)."""
    time.sleep(seconds)


def _quiet(message: str) -> None:
    """An echo that says nothing."""


class Backoff:
    """Wait longer after each refusal in a row (times 0.5-1.5 jitter); give up after ``retries``."""

    def __init__(
        self,
        retries: int = 3,
        base: float = 30.0,
        network_base: float = 5.0,
        factor: float = 3.0,
        cap: float = 900.0,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ):
        self.retries, self.base, self.network_base = retries, base, network_base
        self.factor, self.cap = factor, cap
        self.sleep = sleep or _pause
        self.rng = rng or random.Random()
        self.used = 0

    def wait(self, error: ScrapeError, echo: Callable[[str], None] = _quiet) -> bool:
        """Sleep before the next try and return True, or False when the retries are spent."""
        if self.used >= self.retries:
            return False
        base = self.network_base if isinstance(error, NetworkDown) else self.base
        delay = min(self.cap, base * self.factor**self.used) * self.rng.uniform(0.5, 1.5)
        self.used += 1
        echo(
            f"{error.message}; waiting {delay:.0f} s, then trying again "
            f"({self.used}/{self.retries})"
        )
        self.sleep(delay)
        return True

    def success(self) -> None:
        self.used = 0


def _retrying(call: Callable, backoff: Backoff, echo: Callable[[str], None]):
    """``call()``, waiting and calling again after retryable refusals while the back-off allows."""
    while True:
        try:
            result = call()
        except ScrapeError as exc:
            if exc.retry and backoff.wait(exc, echo):
                continue
            raise
        backoff.success()
        return result


@dataclass
class TagReport:
    """What happened to one hashtag: counts, a status, and why."""

    tag: str
    wanted: int
    backend: str = ""
    saved: int = 0
    skipped: int = 0  # already in the folder
    failed: int = 0  # pictures or posts that could not be fetched or decoded
    videos: int = 0  # video posts/items passed over (no --videos)
    posts: int = 0
    status: str = "ok"  # ok, empty, interrupted, not started, or a ScrapeError kind
    message: str = ""
    hint: str = ""
    problems: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not self.failed

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.problems[reason] += 1

    def stop(self, error: ScrapeError) -> None:
        self.status, self.message, self.hint = error.kind, error.message, error.hint

    def result(self) -> str:
        """The last column of the summary."""
        if self.status == "ok":
            return self.message or "done"
        if self.status == "interrupted":
            return "interrupted (Ctrl-C)"
        return f"{self.status}: {self.message}" if self.message else self.status

    def to_dict(self) -> dict:
        return {
            "tag": self.tag,
            "wanted": self.wanted,
            "saved": self.saved,
            "skipped": self.skipped,
            "failed": self.failed,
            "videos": self.videos,
            "posts": self.posts,
            "status": self.status,
            "message": self.message,
            "hint": self.hint,
            "problems": dict(self.problems),
            "notes": list(self.notes),
            "backend": self.backend,
        }


def summary(reports: list[TagReport]) -> str:
    """The table printed after a scrape: one row per hashtag, then details and what to do."""
    lines = [f"{'hashtag':<24} {'wanted':>6} {'saved':>6} {'skipped':>7} {'failed':>6}  result"]
    for r in reports:
        lines.append(
            f"{'#' + r.tag:<24} {r.wanted:>6} {r.saved:>6} {r.skipped:>7} {r.failed:>6}  "
            f"{r.result()}"
        )
    for r in reports:
        for reason, count in r.problems.most_common():
            lines.append(f"  #{r.tag}: {count} failed: {reason}")
        if r.videos:
            lines.append(
                f"  #{r.tag}: {r.videos} video(s) passed over (add --videos for their covers)"
            )
        lines.extend(f"  #{r.tag}: {note}" for note in r.notes)
    hints = dict.fromkeys(f"{r.status}: {r.hint}" for r in reports if r.hint)
    if hints:
        lines.append("What to do:")
        lines.extend(f"  {hint}" for hint in hints)
    return "\n".join(lines)


# ---------------------------------------------------------------- sessions


class _NoCodeUnpickler(pickle.Unpickler):
    """Unpickles plain dicts and strings only, so a session file cannot run code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"session files hold plain cookies, not {module}.{name}")


def _cookies_from_json(data) -> dict:
    """``{"name": "value"}`` or a browser export ``[{"name": ..., "value": ...}, ...]``."""
    if isinstance(data, list):
        return {
            c["name"]: c["value"]
            for c in data
            if isinstance(c, dict) and "name" in c and "value" in c
        }
    return data


def read_session_file(path: str | Path) -> dict[str, str]:
    """The cookies of an instaloader session file (or a JSON cookie export); never runs code.

    Args:
        path: a file written by ``instaloader --login USER`` (a pickled dict of cookies),
            or JSON: an object of cookie names to values, or a list of cookie objects.

    Returns:
        Cookie names to values; it has at least ``sessionid`` and ``csrftoken``.
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
        if raw.lstrip()[:1] in (b"{", b"["):
            cookies = _cookies_from_json(json.loads(raw))
        else:
            cookies = _NoCodeUnpickler(io.BytesIO(raw)).load()
    except OSError as exc:
        raise LoginFailed(
            f"cannot read the session file {path}: {exc.strerror or exc}", LOGIN_HINT
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise LoginFailed(
            f"{path} is not an instaloader session file ({exc})", LOGIN_HINT
        ) from None
    if not (
        isinstance(cookies, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in cookies.items())
    ):
        raise LoginFailed(
            f"{path} is not an instaloader session file (not a set of cookies)", LOGIN_HINT
        )
    missing = [name for name in ("sessionid", "csrftoken") if not cookies.get(name)]
    if missing:
        raise LoginFailed(
            f"the session file {path} has no {' or '.join(missing)} cookie: it is logged out",
            SESSION_HINT,
        )
    return cookies


def default_session_file(username: str) -> Path | None:
    """instaloader's own session file for ``username``, if instaloader made one."""
    try:
        from instaloader.instaloader import get_default_session_filename
    except ImportError:
        return None
    path = Path(get_default_session_filename(username))
    return path if path.is_file() else None


def _session_username(path: Path, cookies: dict) -> str:
    """The account a session file belongs to: from ``session-<user>`` or its ds_user_id."""
    if path.name.startswith("session-") and len(path.name) > len("session-"):
        return path.name[len("session-") :]
    return cookies.get("ds_user_id") or "session"


# ---------------------------------------------------------------- backends


def _require(module: str):
    """Import a backend's package, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendMissing(
            f"{module.split('.')[0]} cannot be imported ({exc})", "pip install -e '.[scrape]'"
        ) from None


def _read_capped(resp: requests.Response, max_bytes: int, host: str) -> bytes:
    """The body of a streamed response, refusing more than ``max_bytes``."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ImageFailed(f"{host} sent {int(declared):,} bytes, over the {max_bytes:,} byte limit")
    chunks, size = [], 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise ImageFailed(f"{host} sent over the {max_bytes:,} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


class Backend:
    """Lists a hashtag's posts (subclasses) and downloads picture bytes (here, for all)."""

    name = "base"

    def __init__(
        self,
        sleep: Callable[[float], None] | None = None,
        pause: bool = True,
        timeout: float = 30.0,
        max_bytes: int = MAX_IMAGE_BYTES,
    ):
        self.sleep = sleep or _pause
        self.pause = pause  # pace requests to Instagram as a person would
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.cdn = requests.Session()
        self.cdn.headers.update({"User-Agent": USER_AGENT, "Accept": "image/jpeg,image/*;q=0.8"})

    def use_session(self, username: str, cookies: dict[str, str]) -> None:
        raise NotImplementedError

    def login(self, username: str, password: str, ask_code: Callable[[str], str]) -> None:
        raise NotImplementedError

    def posts(self, tag: str) -> Iterator[Post]:
        """An iterator of the hashtag's posts; after a retryable error, ``next`` may be called again."""
        raise NotImplementedError

    def close(self) -> None:
        self.cdn.close()

    def download(self, url: str) -> bytes:
        """The bytes of a picture URL from Instagram's answer, within size and time limits."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageFailed(f"not an http(s) picture URL: {url[:60]!r}")
        host = parts.hostname
        try:
            with self.cdn.get(url, stream=True, timeout=(10, self.timeout)) as resp:
                if resp.status_code == 429:
                    raise RateLimited(
                        f"the picture server {host} answered 429 Too Many Requests", RATE_HINT
                    )
                if resp.status_code in (403, 410):
                    raise ImageFailed(
                        f"HTTP {resp.status_code} from {host} (the signed link "
                        "expired or was refused)"
                    )
                if resp.status_code != 200:
                    raise ImageFailed(f"HTTP {resp.status_code} from {host}")
                return _read_capped(resp, self.max_bytes, host)
        except requests.exceptions.ReadTimeout:
            raise ImageFailed(f"{host} did not answer in time") from None
        except requests.exceptions.ConnectionError as exc:
            raise NetworkDown(f"cannot reach {host} ({_short(exc)})", NETWORK_HINT) from None
        except requests.exceptions.RequestException as exc:
            raise ImageFailed(f"download from {host} failed ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    """The first line of an exception's text, at most 160 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


_SAID = re.compile(r"(\d{3} [A-Za-z][^\n]*?)(?: when accessing |$)")


def _instagram_said(text: str) -> str:
    """``'401 Unauthorized - "fail" status, message "Please wait..."'`` out of instaloader's text."""
    match = _SAID.search(text)
    return match.group(1).strip() if match else text[:200]


# ---- instaloader


class _InstaloaderPosts:
    """Posts of one hashtag through instaloader; survives a retryable error between calls."""

    def __init__(self, backend: InstaloaderBackend, tag: str):
        self.backend, self.tag = backend, tag
        self.notes: list[str] = []
        self._hashtag = None
        self._feed = None
        self._pending = None  # a post taken from the feed but not converted yet

    def __iter__(self):
        return self

    def __next__(self) -> Post:
        il = self.backend.il
        try:
            if self._hashtag is None:
                self._hashtag = il.Hashtag.from_name(self.backend.loader.context, self.tag)
            if self._feed is None:
                self._feed = self._open_feed()
            if self._pending is None:
                self._pending = next(self._feed)
            post = self.backend.convert(self._pending)
        except StopIteration:
            raise
        except ScrapeError:
            raise
        except (
            il.exceptions.InstaloaderException,
            il.exceptions.AbortDownloadException,
            requests.exceptions.RequestException,
            KeyError,
            TypeError,
        ) as exc:
            error = self.backend.error(exc, started=self._feed is not None)
            log.info("#%s: %s", self.tag, error.message, exc_info=True)
            if self._pending is not None and not isinstance(error, _RUN_ERRORS):
                sc = getattr(self._pending, "shortcode", "?")
                self._pending = None
                raise PostFailed(f"post {sc}: {error.message}") from exc
            raise error from exc
        self._pending = None
        return post

    def _open_feed(self):
        """The recent-posts feed (what ``instaloader '#tag'`` uses), else the top posts."""
        ex = self.backend.il.exceptions
        try:
            return self._hashtag.get_posts_resumable()
        except (
            KeyError,
            TypeError,
            ex.QueryReturnedBadRequestException,
            ex.BadResponseException,
        ) as exc:
            self.notes.append(
                f"the recent-posts feed was unreadable ({_short(exc)}); "
                "used the top posts Instagram shows on the hashtag page"
            )
            log.info("#%s: %s", self.tag, self.notes[-1])
            return self._hashtag.get_top_posts()


class InstaloaderBackend(Backend):
    """instaloader as a post lister: its session, its endpoints, our sleeping and our errors."""

    name = "instaloader"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.il = _require("instaloader")
        controller = _instaloader_rate_controller(self.il)
        self.loader = self.il.Instaloader(
            sleep=False,
            quiet=True,
            download_pictures=False,
            download_videos=False,
            download_video_thumbnails=False,
            download_geotags=False,
            download_comments=False,
            save_metadata=False,
            compress_json=False,
            max_connection_attempts=1,
            request_timeout=self.timeout,
            iphone_support=False,
            rate_controller=lambda context: controller(context, self.sleep, self.pause),
        )

    def use_session(self, username: str, cookies: dict[str, str]) -> None:
        self.loader.load_session(username, dict(cookies))

    def login(self, username: str, password: str, ask_code: Callable[[str], str]) -> None:
        ex = self.il.exceptions
        try:
            try:
                self.loader.login(username, password)
            except ex.TwoFactorAuthRequiredException:
                self.loader.two_factor_login(ask_code("Two-factor code for Instagram: ").strip())
        except KeyError as exc:  # instaloader reads the csrftoken cookie of the start page
            raise LoginFailed(
                f"instaloader could not start a login: Instagram set no {exc} cookie", BROWSER_HINT
            ) from None
        except (ex.InstaloaderException, requests.exceptions.RequestException, ValueError) as exc:
            raise self.error(exc, started=False, login=True) from None

    def posts(self, tag: str) -> _InstaloaderPosts:
        return _InstaloaderPosts(self, tag)

    def close(self) -> None:
        self.loader.close()
        super().close()

    def convert(self, post) -> Post:
        """An instaloader ``Post`` as ours (a carousel's pictures in order)."""
        if post.typename == "GraphSidecar":
            media = tuple(
                Media(node.display_url, node.is_video, k)
                for k, node in enumerate(post.get_sidecar_nodes(), 1)
            )
        else:
            media = (Media(post.url, post.is_video),)
        taken = post.date_utc.replace(tzinfo=timezone.utc)
        return Post(post.shortcode, taken, post.caption, post.is_video, media)

    def error(self, exc: BaseException, started: bool, login: bool = False) -> ScrapeError:
        """One of instaloader's exceptions as a :class:`ScrapeError` a person can act on."""
        ex = self.il.exceptions
        chain = _chain(exc)
        text = " | ".join(str(e) for e in chain)
        said = _instagram_said(str(exc))
        if any(isinstance(e, ScrapeError) for e in chain):
            return next(e for e in chain if isinstance(e, ScrapeError))
        if any(isinstance(e, ex.TooManyRequestsException) for e in chain):
            return RateLimited(f"Instagram answered {said}", RATE_HINT)
        if "Please wait a few minutes" in text:
            return RateLimited(f"Instagram answered {said}", RATE_HINT)
        if any(isinstance(e, requests.exceptions.ConnectionError) for e in chain):
            return NetworkDown(f"cannot reach Instagram ({_short(chain[-1])})", NETWORK_HINT)
        if any(isinstance(e, requests.exceptions.Timeout) for e in chain):
            return NetworkDown("Instagram did not answer in time", NETWORK_HINT)
        if isinstance(exc, ex.BadCredentialsException):
            return LoginFailed(
                f"Instagram refused the login: {_short(exc)}",
                "Check the username and password (or the 2FA code); after "
                "several tries Instagram may ask to confirm the login in a browser.",
            )
        if re.search(r"checkpoint|challenge_required", text, re.IGNORECASE):
            return LoginFailed(
                f"Instagram asks to confirm this login ({_short(exc)})", CHECKPOINT_HINT
            )
        if "feedback_required" in text:
            return Blocked(
                "Instagram blocked this account from asking (feedback_required)", BLOCKED_HINT
            )
        if "logged out" in text:
            return LoginRequired("Instagram logged this session out", SESSION_HINT)
        if isinstance(exc, ex.LoginRequiredException) or "login_required" in text:
            return LoginRequired("Instagram requires a logged-in session for hashtags", LOGIN_HINT)
        if isinstance(exc, ex.LoginException) or login:
            return LoginFailed(f"login failed: {_short(exc)}", LOGIN_HINT)
        if isinstance(exc, ex.QueryReturnedNotFoundException):
            if started:
                return FeedEnded(f"Instagram stopped paging ({said})")
            return NotFound("Instagram has no such hashtag (404)", NOT_FOUND_HINT)
        status = re.search(r"(?:^|: )([1-5]\d\d) ", str(exc))
        if status and status.group(1) in ("401", "403"):
            return LoginRequired(
                f"Instagram refused the request: {said}",
                LOGIN_HINT if not self.loader.context.is_logged_in else SESSION_HINT,
            )
        if status and status.group(1).startswith("5"):
            return NetworkDown(f"Instagram's servers answered {said}", NETWORK_HINT)
        return InstagramChanged(
            f"instaloader could not read Instagram's answer ({_short(exc)})", CHANGED_HINT
        )


@functools.cache
def _instaloader_rate_controller(il):
    """A RateController that sleeps through our (injectable) sleep and leaves 429s to us."""

    class RateController(il.RateController):
        def __init__(self, context, sleep, pause):
            super().__init__(context)
            self._sleep, self._pause = sleep, pause
            self._rng = random.Random()

        def sleep(self, secs):
            self._sleep(secs)

        def wait_before_query(self, query_type):
            if self._pause:  # instaloader's own pause before each request, through our sleep
                self._sleep(min(self._rng.expovariate(0.6), 15.0))
            super().wait_before_query(query_type)

        def handle_429(self, query_type):
            raise RateLimited("Instagram answered 429 Too Many Requests", RATE_HINT)

    return RateController


# ---- instalooter


class _MemoryCookieJar(requests.cookies.RequestsCookieJar):
    """instalooter saves its cookie jar to ~/.cache; this one stays in memory."""

    def save(self, *args, **kwargs):
        """Nothing is written: we never store sessions."""

    def load(self, *args, **kwargs):
        """Nothing is read: the cookies are the ones we set."""


@functools.cache
def _looter_class(looters):
    """instalooter's HashtagLooter without its browser probe and on-disk cookie jar."""

    class HashtagLooter(looters.HashtagLooter):
        _user_agent = USER_AGENT  # instead of opening a web browser to learn one

        @classmethod
        def _init_session(cls, session=None):
            session = session or requests.Session()
            if not isinstance(session.cookies, _MemoryCookieJar):
                jar = _MemoryCookieJar()
                jar.update(session.cookies)
                session.cookies = jar
            return session

    return HashtagLooter


_INSTALOOTER_READ_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


class _InstalooterPosts:
    """Posts of one hashtag through instalooter; after an error the feed starts again."""

    def __init__(self, backend: InstalooterBackend, tag: str):
        self.backend, self.tag = backend, tag
        self.notes: list[str] = []
        self._looter = None
        self._medias = None
        self._seen: set[str] = set()
        self._pending: dict | None = None  # a node taken from the feed but not converted yet

    def __iter__(self):
        return self

    def __next__(self) -> Post:
        if self._pending is None:
            self._pending = self._next_node()
        node = self._pending
        try:
            post = self._convert(node)
        except ScrapeError as exc:
            if not exc.retry:  # retryable: keep the node and convert it again
                self._seen.add(node["shortcode"])
                self._pending = None
            raise
        self._seen.add(node["shortcode"])
        self._pending = None
        return post

    def _next_node(self) -> dict:
        """The next media node not yet seen; after an error the feed is opened again."""
        try:
            if self._looter is None:
                self._looter = self._open_looter()
            if self._medias is None:
                pages = self._looter.pages()
                pages.INTERVAL = 0  # its time.sleep between pages; our hook paces instead
                self._medias = self.backend.medias_module.MediasIterator(pages)
            while True:
                node = next(self._medias)
                if node.get("shortcode") not in self._seen:
                    return node
        except StopIteration:
            raise
        except ScrapeError:
            self._medias = None  # its page generator is dead: start over, skipping seen posts
            raise
        except requests.exceptions.RequestException as exc:
            self._medias = None
            raise NetworkDown(f"cannot reach Instagram ({_short(exc)})", NETWORK_HINT) from exc
        except _INSTALOOTER_READ_ERRORS as exc:
            log.info("instalooter could not read the feed", exc_info=True)
            raise InstagramChanged(
                f"instalooter could not read Instagram's hashtag feed "
                f"({type(exc).__name__}: {_short(exc)})",
                INSTALOOTER_HINT,
            ) from exc

    def _open_looter(self):
        """Instantiate the looter: it reads the CSRF token from the home page's _sharedData."""
        try:
            return self.backend.looter_class(self.tag, session=self.backend.session)
        except ScrapeError:
            raise
        except requests.exceptions.RequestException as exc:
            raise NetworkDown(f"cannot reach Instagram ({_short(exc)})", NETWORK_HINT) from exc
        except _INSTALOOTER_READ_ERRORS as exc:
            log.info("instalooter could not read the home page", exc_info=True)
            raise InstagramChanged(
                "instalooter could not read Instagram's home page (no "
                f"window._sharedData; {type(exc).__name__}: {_short(exc)})",
                INSTALOOTER_HINT,
            ) from exc

    def _convert(self, node: dict) -> Post:
        """An instalooter media node as our Post; a carousel needs its post page."""
        shortcode = node["shortcode"]
        edges = (node.get("edge_media_to_caption") or {}).get("edges") or []
        caption = edges[0]["node"].get("text") if edges else None
        taken = _utc(node.get("taken_at_timestamp") or node.get("date"))
        if node.get("__typename") == "GraphSidecar":
            try:
                info = self._looter.get_post_info(shortcode)
                children = info["edge_sidecar_to_children"]["edges"]
            except ScrapeError as exc:
                if isinstance(exc, _RUN_ERRORS):
                    raise
                raise PostFailed(f"post {shortcode}: {exc.message}") from exc
            except requests.exceptions.RequestException as exc:
                raise NetworkDown(f"cannot reach Instagram ({_short(exc)})", NETWORK_HINT) from exc
            except _INSTALOOTER_READ_ERRORS as exc:
                log.info("instalooter could not read post %s", shortcode, exc_info=True)
                raise PostFailed(
                    f"post {shortcode}: instalooter could not read the carousel's "
                    f"page ({type(exc).__name__}: {_short(exc)})"
                ) from exc
            media = tuple(
                Media(c["node"]["display_url"], bool(c["node"].get("is_video")), k)
                for k, c in enumerate(children, 1)
            )
        else:
            media = (Media(node["display_url"], bool(node.get("is_video"))),)
        return Post(shortcode, taken, caption, bool(node.get("is_video")), media)


class InstalooterBackend(Backend):
    """instalooter (the original workshop's tool) as a post lister, with answers checked by a hook."""

    name = "instalooter"

    def __init__(self, page_pause: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.looters = _require("instalooter.looters")
        self.medias_module = _require("instalooter.medias")
        self.looter_class = _looter_class(self.looters)
        self.page_pause = page_pause
        self.session = requests.Session()
        self.session.cookies = _MemoryCookieJar()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.hooks["response"].append(self._check_answer)

    def use_session(self, username: str, cookies: dict[str, str]) -> None:
        for name, value in cookies.items():
            self.session.cookies.set(name, value, domain=".instagram.com", path="/")

    def login(self, username: str, password: str, ask_code: Callable[[str], str]) -> None:
        try:
            self.looter_class._login(username, password, session=self.session)
        except ScrapeError:
            raise
        except requests.exceptions.RequestException as exc:
            raise NetworkDown(f"cannot reach Instagram ({_short(exc)})", NETWORK_HINT) from None
        except json.JSONDecodeError:
            raise InstagramChanged(
                "instalooter could not log in: Instagram's answer was not JSON", INSTALOOTER_HINT
            ) from None
        except ValueError as exc:
            raise LoginFailed(
                f"Instagram refused the login ({exc})", "Check the username and password."
            ) from None
        except (AttributeError, TypeError, KeyError, IndexError, StopIteration, SystemError) as exc:
            raise InstagramChanged(
                "instalooter could not log in: Instagram's login page no "
                f"longer has what it reads ({type(exc).__name__}: "
                f"{_short(exc)})",
                INSTALOOTER_HINT,
            ) from None

    def posts(self, tag: str) -> _InstalooterPosts:
        return _InstalooterPosts(self, tag)

    def close(self) -> None:
        self.session.close()
        super().close()

    def _check_answer(self, resp: requests.Response, *args, **kwargs) -> None:
        """A response hook: turn Instagram's refusals into ScrapeErrors before instalooter parses."""
        path = urllib.parse.urlsplit(resp.url).path
        location = resp.headers.get("Location", "")
        if resp.is_redirect and "/accounts/login" in location and "/accounts/login" not in path:
            raise LoginRequired("Instagram redirected to its login page", LOGIN_HINT)
        said = f"{resp.status_code} {resp.reason}"
        message = _json_message(resp)
        if message:
            said += f' ("{message}")'
        if "/accounts/login" in path and resp.status_code != 200:
            if re.search(r"checkpoint|challenge", message or "", re.IGNORECASE):
                raise LoginFailed(f"Instagram asks to confirm this login ({said})", CHECKPOINT_HINT)
            raise LoginFailed(f"Instagram refused the login ({said})", LOGIN_HINT)
        if (
            resp.status_code == 429
            or "wait a few minutes" in (message or "")
            or message == "rate limited"
        ):
            raise RateLimited(f"Instagram answered {said}", RATE_HINT)
        if resp.status_code in (401, 403) or message == "login_required":
            raise LoginRequired(f"Instagram refused the request ({said})", LOGIN_HINT)
        if resp.status_code == 404:
            raise NotFound(f"Instagram answered 404 for {path}", NOT_FOUND_HINT)
        if resp.status_code >= 500:
            raise NetworkDown(f"Instagram's servers answered {said}", NETWORK_HINT)
        if "/graphql/query" in path:
            self._check_feed_page(resp, said)

    def _check_feed_page(self, resp: requests.Response, said: str) -> None:
        """A feed page must be JSON with ``data``, else instalooter loops on it forever."""
        try:
            page = resp.json()
        except ValueError:
            raise InstagramChanged(
                "Instagram's hashtag feed answered with a page, not JSON", INSTALOOTER_HINT
            ) from None
        if not isinstance(page, dict) or "data" not in page:
            raise InstagramChanged(
                f"Instagram's hashtag feed answered without data ({said})", INSTALOOTER_HINT
            )
        if self.pause and self.page_pause:
            self.sleep(self.page_pause)


def _json_message(resp: requests.Response) -> str | None:
    """The ``message`` of a JSON answer, if it has one."""
    if "json" not in resp.headers.get("Content-Type", ""):
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else None


BACKEND_CLASSES = {"instaloader": InstaloaderBackend, "instalooter": InstalooterBackend}


def open_backend(
    name: str = "instaloader",
    username: str | None = None,
    session_file: str | Path | None = None,
    ask_password: Callable[[str], str] | None = None,
    ask_code: Callable[[str], str] | None = None,
    **kwargs,
) -> Backend:
    """A backend, logged in through a session file or a password typed once.

    Args:
        name: ``instaloader`` (recommended) or ``instalooter``.
        username: the Instagram account. Without ``session_file``, instaloader's own
            session file for it is used if it exists, else the password is asked for.
        session_file: an instaloader session file (or JSON cookies) to use.
        ask_password: how to ask for the password (default ``getpass``; never stored).
        ask_code: how to ask for a two-factor code (default ``input``).
        **kwargs: passed to the backend (``sleep``, ``pause``, ``timeout``, ``max_bytes``).

    Returns:
        The backend; without a username or session file, it asks Instagram anonymously.
    """
    if name not in BACKEND_CLASSES:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    backend = BACKEND_CLASSES[name](**kwargs)
    try:
        if session_file is None and username:
            session_file = default_session_file(username)
        if session_file is not None:
            path = Path(session_file).expanduser()
            cookies = read_session_file(path)
            backend.use_session(username or _session_username(path, cookies), cookies)
            log.info("using the Instagram session in %s", path)
        elif username:
            password = (ask_password or getpass.getpass)(
                f"Instagram password for {username} (used once, never stored): "
            )
            backend.login(username, password, ask_code or input)
            del password
    except BaseException:
        backend.close()
        raise
    return backend


# ---------------------------------------------------------------- the downloader


def _write(call: Callable[[], dict], folder: TagFolder, report: TagReport) -> dict | None:
    """Save a picture or its line; a picture that does not decode is counted, not saved."""
    try:
        return call()
    except ImageError as exc:
        report.fail(f"not a picture ({exc})")
        return None
    except OSError as exc:
        raise WriteFailed(
            f"cannot write in {folder.path}: {exc.strerror or exc}",
            "Free some disk space (or choose another --dest) and run the same "
            "command again: saved photos are kept and skipped.",
        ) from exc


def _save_post(
    post: Post,
    folder: TagFolder,
    backend: Backend,
    report: TagReport,
    videos: bool,
    backoff: Backoff,
    echo: Callable[[str], None],
) -> None:
    """Save the post's new pictures, skip those already here, count the rest."""
    for media in post.media:
        if report.saved >= report.wanted:
            return
        if media.is_video and not videos:
            report.videos += 1
            continue
        stem, record = post.stem(media), post.record(media, backend.name)
        existing = folder.find(stem)
        if existing:
            report.skipped += 1
            if not folder.has_record(existing):  # saved, then interrupted before its line
                _write(functools.partial(folder.add_record, existing, record), folder, report)
            continue
        try:
            data = _retrying(functools.partial(backend.download, media.url), backoff, echo)
        except ImageFailed as exc:
            report.fail(exc.message)
            continue
        saved = _write(functools.partial(folder.save, stem, data, record), folder, report)
        if saved is None:
            continue
        report.saved += 1
        echo(f"#{folder.tag} [{report.saved}/{report.wanted}] {saved['file']}")


def scrape_tag(
    backend: Backend,
    tag: str,
    dest: str | Path = DEFAULT_DEST,
    n: int = 50,
    videos: bool = False,
    backoff: Backoff | None = None,
    echo: Callable[[str], None] = _quiet,
) -> TagReport:
    """Save at most ``n`` new photos of one hashtag into ``dest/<tag>/``; never raises ScrapeError.

    Args:
        backend: from :func:`open_backend`.
        tag: the hashtag, with or without '#'.
        dest: the folder of hashtag folders.
        n: most new pictures to save in this run (pictures already here do not count).
        videos: also save the cover picture of videos (they are passed over otherwise).
        backoff: waits between retries after 429s and network errors.
        echo: called with one line of progress at a time.

    Returns:
        The :class:`TagReport`; a refusal is in its ``status``/``message``/``hint``.
    """
    folder = TagFolder(dest, tag)
    backoff = backoff or Backoff(sleep=backend.sleep)
    report = TagReport(folder.tag, n, backend=backend.name)
    stream = backend.posts(folder.tag)
    seen: set[str] = set()
    try:
        folder.remove_stale_temps()
        while report.saved < n:
            try:
                post = _retrying(lambda: next(stream, None), backoff, echo)
            except PostFailed as exc:
                report.fail(exc.message)
                continue
            except FeedEnded as exc:
                report.notes.append(f"{exc.message}; kept the {report.posts} posts seen")
                break
            if post is None:
                break
            if post.shortcode in seen:
                continue
            seen.add(post.shortcode)
            report.posts += 1
            _save_post(post, folder, backend, report, videos, backoff, echo)
    except ScrapeError as exc:
        report.stop(exc)
    except requests.exceptions.RequestException as exc:  # a backend let one through
        report.stop(NetworkDown(f"cannot reach Instagram ({_short(exc)})", NETWORK_HINT))
    except OSError as exc:
        report.stop(
            WriteFailed(
                f"cannot clean up {folder.path}: {exc.strerror or exc}",
                "Check the folder's permissions.",
            )
        )
    except KeyboardInterrupt:
        report.status = "interrupted"
    report.notes[:0] = getattr(stream, "notes", [])
    if report.status == "ok" and report.posts == 0 and not report.failed:
        report.status, report.hint = "empty", EMPTY_HINT
        report.message = f"Instagram listed no posts for #{report.tag}"
    elif report.status == "ok" and report.saved < n:
        report.message = f"the feed ended after {report.posts} posts"
    return report


def scrape(
    tags: list[str],
    backend: Backend,
    dest: str | Path = DEFAULT_DEST,
    n: int = 50,
    videos: bool = False,
    backoff: Backoff | None = None,
    echo: Callable[[str], None] = _quiet,
) -> list[TagReport]:
    """Scrape several hashtags in turn; stop cleanly when Instagram refuses for all of them.

    Args:
        tags: hashtags, with or without '#'.
        backend: from :func:`open_backend`.
        dest: the folder of hashtag folders.
        n: most new pictures per hashtag.
        videos: also save video covers.
        backoff: shared by all hashtags (a rate limit is per account, not per hashtag).
        echo: progress lines.

    Returns:
        One :class:`TagReport` per hashtag, in order (``not started`` after a stop).
    """
    backoff = backoff or Backoff(sleep=backend.sleep)
    reports: list[TagReport] = []
    stopped: TagReport | None = None
    for tag in tags:
        if stopped is not None:
            report = TagReport(normalize_tag(tag), n, backend=backend.name, status="not started")
            report.message = f"stopped after #{stopped.tag}"
            reports.append(report)
            continue
        echo(f"#{normalize_tag(tag)}: asking Instagram through {backend.name}")
        report = scrape_tag(backend, tag, dest, n, videos, backoff, echo)
        reports.append(report)
        error = BACKEND_ERRORS.get(report.status)
        if report.status == "interrupted" or (error is not None and error.stops_run):
            stopped = report
    return reports


BACKEND_ERRORS = {
    cls.kind: cls
    for cls in (
        LoginRequired,
        LoginFailed,
        RateLimited,
        Blocked,
        NetworkDown,
        NotFound,
        InstagramChanged,
        BackendMissing,
        WriteFailed,
    )
}


def not_run(tags: list[str], n: int, error: ScrapeError, backend: str = "") -> list[TagReport]:
    """Reports for hashtags that never started because logging in failed."""
    reports = []
    for tag in tags:
        report = TagReport(normalize_tag(tag), n, backend=backend)
        report.stop(error)
        reports.append(report)
    return reports


# ---------------------------------------------------------------- command line

SCRAPE_DESCRIPTION = """\
Download the photos of Instagram hashtags into DEST/<tag>/<shortcode>.jpg (carousel
posts: <shortcode>_<k>.jpg), each written to a temporary name and renamed, with one
line per photo in DEST/<tag>/manifest.jsonl: post URL, time taken, caption, every
hashtag of the caption, image size, SHA-256 and backend. Interrupt and re-run at
will: photos already saved are skipped and counted, nothing is downloaded twice.

What Instagram requires today: hashtags are shown to logged-in accounts only, and
Instagram slows down accounts that ask fast (HTTP 429, or 401 "Please wait a few
minutes"). Make a session file once with instaloader, which asks for your password
and keeps only a session cookie, then scrape with it:

    instaloader --login YOUR_USERNAME          (~/.config/instaloader/session-YOUR_USERNAME)
    hashtag scrape paleo vegan -n 50 --login YOUR_USERNAME

--session-file FILE uses a session file kept elsewhere. With --login and no session
file, the password is asked for (never a flag, never stored, never logged). Use a
spare account: Instagram may ask it to confirm a login, or block it for a while.
Where Instagram refuses, use 'hashtag import FOLDER' or 'hashtag import-urls FILE'.
"""

SCRAPE_EPILOG = """\
The summary says, per hashtag: wanted, saved, skipped (already here), failed, and why.
Exit status: 0 all done; 1 something failed or Instagram refused (see the summary);
2 bad arguments or a backend that is not installed; 130 interrupted.
instalooter (the original workshop's tool, last release 2020) no longer works against
Instagram (althonos/InstaLooter#371, #360); it stays for comparison.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _echo_to(quiet: bool) -> Callable[[str], None]:
    return _quiet if quiet else functools.partial(print, flush=True)


def _cmd_scrape(args) -> int:
    try:
        tags = list(dict.fromkeys(normalize_tag(t) for t in args.tags))
    except ValueError as exc:
        print(f"hashtag scrape: error: {exc}", file=sys.stderr)
        return 2
    echo = _echo_to(args.quiet)
    try:
        backend = open_backend(args.backend, username=args.login, session_file=args.session_file)
    except BackendMissing as exc:
        print(f"hashtag scrape: error: {exc}", file=sys.stderr)
        return 2
    except ScrapeError as exc:
        print(summary(not_run(tags, args.n, exc, args.backend)))
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        reports = scrape(
            tags,
            backend,
            args.dest,
            args.n,
            videos=args.videos,
            backoff=Backoff(retries=args.retries, sleep=backend.sleep),
            echo=echo,
        )
    finally:
        backend.close()
    print(summary(reports))
    if any(r.status == "interrupted" for r in reports):
        return 130
    return 0 if all(r.ok for r in reports) else 1


def _cmd_import(args) -> int:
    from helpers.importing import import_folder

    try:
        report = import_folder(args.folder, args.tag, args.dest, echo=_echo_to(args.quiet))
    except ValueError as exc:
        print(f"hashtag import: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hashtag import: error: cannot write in {args.dest}: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def _cmd_import_urls(args) -> int:
    from helpers.fetch import FetchPolicy
    from helpers.importing import import_urls, read_url_list

    policy = FetchPolicy(
        allow_private=args.allow_private,
        max_bytes=args.max_mb * 1024 * 1024,
        deadline=args.timeout,
        read_timeout=min(10.0, args.timeout),
    )
    try:
        urls = read_url_list(args.file)
        report = import_urls(urls, args.tag, args.dest, policy, echo=_echo_to(args.quiet))
    except ValueError as exc:
        print(f"hashtag import-urls: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hashtag import-urls: error: cannot write in {args.dest}: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def _add_scrape(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "scrape",
        help="download photos of Instagram hashtags (needs a logged-in session)",
        description=SCRAPE_DESCRIPTION,
        epilog=SCRAPE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("tags", nargs="+", metavar="TAG", help="hashtags, with or without '#'")
    p.add_argument(
        "-n",
        type=_positive,
        default=50,
        help="most NEW photos per hashtag in this run; photos already saved are "
        "skipped and not counted (default: %(default)s)",
    )
    p.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help="folder of hashtag folders (default: %(default)s)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="instaloader",
        help="instaloader (maintained, default) or instalooter (the original "
        "workshop's tool; broken against today's Instagram)",
    )
    p.add_argument(
        "--login",
        metavar="USER",
        help="your Instagram username: uses instaloader's session file for USER if "
        "there is one, else asks for the password (not stored)",
    )
    p.add_argument(
        "--session-file",
        "--session_file",
        dest="session_file",
        type=Path,
        metavar="FILE",
        help="an instaloader session file ('instaloader --login USER' "
        "writes one), or cookies exported as JSON",
    )
    p.add_argument(
        "--videos",
        action="store_true",
        help="also save the cover picture of videos (passed over by default)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="waits with back-off after 429 / 'please wait' / network errors before "
        "stopping with what was saved (default: %(default)s)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary")
    if add_common:
        add_common(p)
    p.set_defaults(func=_cmd_scrape)


def _add_imports(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "import",
        help="copy a folder of pictures into a hashtag folder (offline)",
        description="Copy every picture under FOLDER into DEST/<tag>/ with a manifest line "
        "each. Each file is decoded first: a damaged one is reported and left out. "
        "Pictures already there (same content) are skipped. If FOLDER has a "
        "manifest.jsonl (a scraped folder from elsewhere), its captions and "
        "hashtags come along.",
    )
    p.add_argument("folder", type=Path, help="folder searched recursively for pictures")
    p.add_argument("--tag", required=True, help="the hashtag these pictures belong to")
    p.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help="folder of hashtag folders (default: %(default)s)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary")
    if add_common:
        add_common(p)
    p.set_defaults(func=_cmd_import)

    p = subparsers.add_parser(
        "import-urls",
        help="download a list of picture URLs into a hashtag folder",
        description="Download each http(s) URL listed in FILE (one per line, '#' comments; "
        "'-' reads standard input) into DEST/<tag>/ with a manifest line each. "
        "The same rules as the API apply: http and https only, no loopback or "
        "private addresses (unless --allow_private), size and time limits, and the "
        "answer must be a picture that decodes. A refused URL is reported, the "
        "others go on; URLs already imported are skipped.",
    )
    p.add_argument("file", help="text file of URLs, or '-'")
    p.add_argument("--tag", required=True, help="the hashtag these pictures belong to")
    p.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help="folder of hashtag folders (default: %(default)s)",
    )
    p.add_argument(
        "--allow_private",
        "--allow-private",
        dest="allow_private",
        action="store_true",
        help="also fetch from loopback and private addresses (a trusted local server)",
    )
    p.add_argument(
        "--max_mb", type=_positive, default=20, help="largest picture in MB (default: %(default)s)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds for each download, redirects included (default: %(default)s)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary")
    if add_common:
        add_common(p)
    p.set_defaults(func=_cmd_import_urls)


def add_commands(
    subparsers, add_common: Callable[[argparse.ArgumentParser], None] | None = None
) -> None:
    """Add ``scrape``, ``import`` and ``import-urls`` to the ``hashtag`` command.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned.
        add_common: called with each new subparser, to add flags every command shares.
    """
    _add_scrape(subparsers, add_common)
    _add_imports(subparsers, add_common)
