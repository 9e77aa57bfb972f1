"""A real HTTP site on a loopback port for the smoke layer's tests: fixed answers
by path, and a record of the requests it received."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RELEASE = "20261123-140000-abc123"
LOGIN_FORM = (
    '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="tok">'
    '<input name="username"><input name="password"></form>'
)


class Handler(BaseHTTPRequestHandler):
    server: SiteServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        path = self.path
        if path == "/":
            self._send(200, "<h1>Notes board</h1>", release=RELEASE)
        elif path == "/old/":
            self._send(200, "old", release="20200101-000000-old")
        elif path == "/boom/":
            self._send(500, "<h1>Server Error (500)</h1>", release=RELEASE)
        elif path == "/loop/":
            self._send(302, "", location="/loop/")
        elif path == "/to-login/":  # a home page that redirects, as many do
            self._send(302, "", release=RELEASE, location="/")
        elif path == "/to-error/":
            self._send(302, "", release=RELEASE, location="/boom/")
        elif path == "/hop/":
            self._send(302, "", location="/")
        elif path == "/slow/":
            time.sleep(1.5)
            self._send(200, "late", release=RELEASE)
        elif path.startswith("/health/"):
            self._send(200, "<html>health</html>", release=RELEASE, kind="text/html")
        elif path == "/json-ok/":
            self._send(200, '{"Database": "working"}', release=RELEASE, kind="application/json")
        elif path == "/json-bad/":
            body = '{"Database": "unavailable: connection refused"}'
            self._send(200, body, release=RELEASE, kind="application/json")
        elif path == "/admin/login/":
            self._send(200, LOGIN_FORM, release=RELEASE, cookie="csrftoken=tok; Secure")
        elif path == "/private/":
            if "sessionid=s1" in (self.headers.get("Cookie") or ""):
                self._send(200, "welcome smoke", release=RELEASE)
            else:
                self._send(302, "", location="/admin/login/")
        elif path == "/later/":
            # Fails for the first second of the server's life, then works.
            healthy = time.monotonic() - self.server.started > 1.0
            self._send(200 if healthy else 503, "later", release=RELEASE)
        else:
            self._send(404, "not found", release=RELEASE)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        self.server.requests.append(("POST", self.path, {**dict(self.headers), "body": body}))
        if self.path == "/admin/login/" and "password=right-horse" in body:
            self._send(302, "", location="/admin/", cookie="sessionid=s1; Secure; HttpOnly")
        else:
            self._send(200, LOGIN_FORM + "Please enter the correct username", release=RELEASE)

    def _send(
        self,
        status: int,
        body: str,
        *,
        release: str | None = None,
        location: str | None = None,
        cookie: str | None = None,
        kind: str = "text/html; charset=utf-8",
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        if release:
            self.send_header("X-Release", release)
        if location:
            self.send_header("Location", location)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.started = time.monotonic()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@contextmanager
def running_site() -> Iterator[SiteServer]:
    server = SiteServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
