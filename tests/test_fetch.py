"""The URL fetcher refuses everything the original `curl` shell command would have done."""

import io

import pytest
from PIL import Image

from helpers.fetch import FetchError, FetchPolicy, fetch_bytes
from tests.loopback import LoopbackServer, declares, redirect, respond, slow, stream


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _jpeg()


@pytest.fixture(scope="module")
def server():
    with LoopbackServer() as site:
        site.routes.update(
            {
                "/cat.jpg": respond(JPEG),
                "/page.html": respond(b"<html><body>hi</body></html>", "text/html"),
                "/drawing.svg": respond(
                    b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"
                ),
                "/declared-50mb": declares(50 * 2**20, JPEG),
                "/stream-50mb": stream(JPEG[:3]),
                "/slow.jpg": slow(JPEG),
                "/missing.jpg": lambda h: h.send_error(404),
                "/to-cat": redirect(f"{site.url}/cat.jpg"),
                "/to-loopback": redirect(f"http://127.0.0.1:{site.port}/cat.jpg"),
                "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
                "/loop": redirect("/loop"),
            }
        )
        yield site.url


TEST_POLICY = FetchPolicy(allow_hosts=frozenset({"localhost"}), read_timeout=1.0)


def refused(url, policy=TEST_POLICY) -> FetchError:
    with pytest.raises(FetchError) as err:
        fetch_bytes(url, policy)
    return err.value


def test_fetches_an_image_and_follows_a_safe_redirect(server):
    assert fetch_bytes(server + "/cat.jpg", TEST_POLICY) == JPEG
    assert fetch_bytes(server + "/to-cat", TEST_POLICY) == JPEG


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://10.1.2.3/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_non_public_addresses_are_refused_without_connecting(url):
    error = refused(url, FetchPolicy())
    assert (error.status, error.code) == (400, "forbidden_address")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x.jpg",
        "gopher://x/",
        "not a url",
        "http://user:pw@example.com/",
    ],
)
def test_other_schemes_and_malformed_urls_are_bad_requests(url):
    assert refused(url).status == 400


def test_a_redirect_to_a_private_address_is_refused(server):
    for path in ("/to-loopback", "/to-metadata"):
        assert refused(server + path).code == "forbidden_address"


def test_html_and_svg_are_not_images(server):
    for path in ("/page.html", "/drawing.svg"):
        error = refused(server + path)
        assert (error.status, error.code) == (415, "not_an_image")


def test_bodies_over_the_limit_are_refused_declared_or_not(server):
    assert refused(server + "/declared-50mb").status == 413
    assert refused(server + "/stream-50mb").status == 413


def test_a_slow_server_times_out(server):
    error = refused(server + "/slow.jpg")
    assert (error.status, error.code) == (504, "upstream_timeout")


def test_upstream_errors_and_redirect_loops_are_bad_gateway(server):
    assert refused(server + "/missing.jpg").status == 502
    assert refused(server + "/loop").status == 502
    assert refused("http://localhost:9/x.jpg").status == 502  # connection refused


def test_trusted_callers_may_allow_local_addresses(server):
    local = server.replace("localhost", "127.0.0.1") + "/cat.jpg"
    assert fetch_bytes(local, FetchPolicy(allow_private=True)) == JPEG
