"""Downloading a picture from a URL, with limits: http(s) only, bounded size and time."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

MAX_BYTES = 20 * 1024 * 1024
TIMEOUT_SECONDS = 10.0


class FetchError(ValueError):
    """The URL could not be fetched as an image; the message says why."""


def is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in ("http", "https")


def fetch_bytes(url: str, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Return the body at ``url``, refusing other schemes and bodies over ``max_bytes``."""
    if not is_url(url):
        raise FetchError(f"only http and https URLs are fetched, not {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "hashtag-predictor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{url} is {int(declared):,} bytes, over the {max_bytes:,} limit")
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FetchError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from None
    if len(body) > max_bytes:
        raise FetchError(f"{url} is over the {max_bytes:,} byte limit")
    return body
