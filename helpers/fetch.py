"""Fetching a picture from a URL that a stranger typed, safely.

The original workshop ran ``os.system("curl -o temp_image " + picture)``. Here:

* only ``http`` and ``https``; no shell, no file named by the client;
* the host is resolved once, every address is checked (no loopback, private,
  link-local — 169.254.169.254 included —, multicast or reserved addresses
  unless the policy allows them), and the connection goes to the address that
  was checked, so a DNS answer cannot change between check and use;
* redirects are followed by hand, each new URL checked the same way;
* connect and read timeouts, an overall deadline, and a byte limit enforced
  while streaming (a lying or missing Content-Length changes nothing);
* the body must look like an image (magic bytes), so HTML, SVG or JSON are
  refused before any decoder sees them.

Every refusal is a :class:`FetchError` carrying the HTTP status an API should
answer with and a stable error code.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from helpers.images import sniff_image_type

MAX_BYTES = 20 * 1024 * 1024
_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(ValueError):
    """A URL that could not be fetched as an image. ``status``/``code`` suit an API answer."""

    def __init__(self, message: str, status: int = 400, code: str = "bad_url"):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one download."""

    allow_private: bool = False  # loopback/private/link-local targets (trusted CLI use)
    allow_hosts: frozenset[str] = frozenset()  # host names exempt from the address check
    max_bytes: int = MAX_BYTES
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    deadline: float = 20.0  # seconds for the whole download, redirects included
    max_redirects: int = 5
    require_image: bool = True

    @classmethod
    def from_env(cls) -> FetchPolicy:
        """HASHTAG_ALLOW_PRIVATE_URLS=1 and HASHTAG_ALLOW_HOSTS=a,b loosen the address check."""
        hosts = os.environ.get("HASHTAG_ALLOW_HOSTS", "")
        return cls(
            allow_private=os.environ.get("HASHTAG_ALLOW_PRIVATE_URLS") == "1",
            allow_hosts=frozenset(h.strip().lower() for h in hosts.split(",") if h.strip()),
        )


def is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in ("http", "https")


def _check_address(ip: str, policy: FetchPolicy) -> None:
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if policy.allow_private:
        return
    if not address.is_global or address.is_multicast or address.is_reserved:
        raise FetchError(
            f"refusing to fetch from a non-public address ({address})", 400, "forbidden_address"
        )


def _resolve(host: str, port: int, policy: FetchPolicy) -> list[str]:
    """Resolve ``host`` and check every address it has (a host must not hide a private one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host}: {exc.strerror}", 502, "upstream_error") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if host.lower() not in policy.allow_hosts:
        for ip in addresses:
            _check_address(ip, policy)
    return addresses


def _parse(url: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FetchError(f"not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs are fetched, not {parts.scheme or 'no'} scheme")
    if not parts.hostname:
        raise FetchError(f"URL has no host: {url!r}")
    if parts.username or parts.password:
        raise FetchError("URLs with credentials are not fetched")
    return parts


def _open(parts: urllib.parse.SplitResult, policy: FetchPolicy):
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(parts.hostname, port, policy)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname,
            port,
            timeout=policy.connect_timeout,
            context=ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=policy.connect_timeout)

    def connect_checked(address, timeout, source_address=None):
        error = None
        for ip in addresses:  # only the addresses that were checked
            try:
                return socket.create_connection((ip, port), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error

    conn._create_connection = connect_checked  # connect to the address we checked
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn.request(
        "GET",
        path,
        headers={
            "User-Agent": "hashtag-predictor/1",
            "Accept": "image/*",
            "Accept-Encoding": "identity",
        },
    )
    conn.sock.settimeout(policy.read_timeout)
    return conn, conn.getresponse()


def _read_limited(response, policy: FetchPolicy, started: float, url: str) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(
            f"the image is {int(declared):,} bytes, over the {policy.max_bytes:,} byte limit",
            413,
            "too_large",
        )
    chunks, size = [], 0
    while True:
        if time.monotonic() - started > policy.deadline:
            raise FetchError(f"{url} took over {policy.deadline:g} s", 504, "upstream_timeout")
        chunk = response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > policy.max_bytes:
            raise FetchError(
                f"the image is over the {policy.max_bytes:,} byte limit", 413, "too_large"
            )
        chunks.append(chunk)


def fetch_bytes(url: str, policy: FetchPolicy = FetchPolicy()) -> bytes:
    """Download ``url`` under ``policy`` and return the body (an image, unless not required)."""
    started = time.monotonic()
    for _ in range(policy.max_redirects + 1):
        parts = _parse(url)
        conn = None
        try:
            conn, response = _open(parts, policy)
            if response.status in _REDIRECTS and response.getheader("Location"):
                url = urllib.parse.urljoin(url, response.getheader("Location"))
                continue
            if response.status != 200:
                raise FetchError(
                    f"{parts.hostname} answered HTTP {response.status} {response.reason}",
                    502,
                    "upstream_error",
                )
            body = _read_limited(response, policy, started, url)
        except TimeoutError:
            raise FetchError(
                f"{parts.hostname} did not answer in time", 504, "upstream_timeout"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(
                f"cannot fetch from {parts.hostname}: {exc}", 502, "upstream_error"
            ) from None
        finally:
            if conn is not None:
                conn.close()
        if policy.require_image and sniff_image_type(body) is None:
            raise FetchError(
                "the URL did not return an image (JPEG, PNG, GIF, WebP or BMP)", 415, "not_an_image"
            )
        return body
    raise FetchError(f"more than {policy.max_redirects} redirects", 502, "too_many_redirects")
