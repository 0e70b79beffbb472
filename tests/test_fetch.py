"""The URL fetcher refuses everything the original `curl` shell command would have done."""

import http.server
import io
import threading
import time

import pytest
from PIL import Image

from helpers.fetch import FetchError, FetchPolicy, fetch_bytes


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _jpeg()


class Handler(http.server.BaseHTTPRequestHandler):
    routes = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        route(self)


def send(handler, body, ctype="image/jpeg", status=200, length=True):
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location):
    def route(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def huge_without_length(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.end_headers()
    try:
        handler.wfile.write(JPEG[:3])
        for _ in range(50 * 16):  # 50 MB in 64 KiB pieces, no Content-Length
            handler.wfile.write(b"\0" * 65536)
    except (BrokenPipeError, ConnectionResetError):
        pass


def declares_50mb(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", str(50 * 2**20))
    handler.end_headers()
    handler.wfile.write(JPEG)


def slow(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", str(len(JPEG)))
    handler.end_headers()
    time.sleep(3)
    try:
        handler.wfile.write(JPEG)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    Handler.routes = {
        "/cat.jpg": lambda h: send(h, JPEG),
        "/page.html": lambda h: send(h, b"<html><body>hi</body></html>", "text/html"),
        "/drawing.svg": lambda h: send(
            h, b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"
        ),
        "/declared-50mb": declares_50mb,
        "/stream-50mb": huge_without_length,
        "/slow.jpg": slow,
        "/missing.jpg": lambda h: h.send_error(404),
        "/to-cat": redirect(f"http://localhost:{port}/cat.jpg"),
        "/to-loopback": redirect(f"http://127.0.0.1:{port}/cat.jpg"),
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/loop": redirect("/loop"),
    }
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{port}"
    httpd.shutdown()
    httpd.server_close()


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
    started = time.monotonic()
    error = refused(server + "/slow.jpg")
    assert (error.status, error.code) == (504, "upstream_timeout")
    assert time.monotonic() - started < 2.5


def test_upstream_errors_and_redirect_loops_are_bad_gateway(server):
    assert refused(server + "/missing.jpg").status == 502
    assert refused(server + "/loop").status == 502
    assert refused("http://localhost:9/x.jpg").status == 502  # connection refused


def test_trusted_callers_may_allow_local_addresses(server):
    local = server.replace("localhost", "127.0.0.1") + "/cat.jpg"
    assert fetch_bytes(local, FetchPolicy(allow_private=True)) == JPEG
