"""A loopback HTTP server with scripted routes, standing in for the web in tests.

    with LoopbackServer({"/cat.jpg": respond(JPEG)}) as site:
        fetch_bytes(site.url + "/cat.jpg", ...)

Each server has its own routes (add more after it starts) and records the paths
it was asked for in ``hits``. Routes are functions of the request handler.
"""

from __future__ import annotations

import http.server
import threading
import time

CLIENT_GONE = (BrokenPipeError, ConnectionResetError)


def respond(body: bytes, ctype: str = "image/jpeg", status: int = 200, length: bool = True):
    """A route answering ``body`` (with a Content-Length unless ``length`` is False)."""

    def route(handler):
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        if length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            handler.wfile.write(body)
        except CLIENT_GONE:
            pass

    return route


def redirect(location: str):
    """A route answering 302 to ``location``."""

    def route(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def stream(prefix: bytes, megabytes: int = 50):
    """A route streaming ``prefix`` then zeros, with no Content-Length (the limit must hold)."""

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        try:
            handler.wfile.write(prefix)
            for _ in range(megabytes * 16):
                handler.wfile.write(b"\0" * 65536)
        except CLIENT_GONE:
            pass

    return route


def declares(length: int, body: bytes):
    """A route whose Content-Length claims ``length`` bytes but sends ``body``."""

    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        try:
            handler.wfile.write(body)
        except CLIENT_GONE:
            pass

    return route


def slow(body: bytes, seconds: float = 3.0):
    """A route that keeps the client waiting ``seconds`` before it answers ``body``."""
    answer = respond(body)

    def route(handler):
        time.sleep(seconds)
        answer(handler)

    return route


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1; ``url`` uses the name localhost."""

    def __init__(self, routes: dict | None = None):
        self.routes: dict = dict(routes or {})
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.hits.append(path)
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients hanging up on purpose (limits, timeouts) are part of the tests

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://localhost:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
