"""Loopback stand-ins that record what they receive: an HTTP server (for Sentry's API,
its DSN endpoint and webhooks) and a UDP receiver (for StatsD)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def envelope(self) -> list[Any]:
        """A Sentry envelope: one JSON document per line."""
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.append(Received("POST", self.path, dict(self.headers), body))
        status = self.server.status
        data = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int = 201) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.status = status

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


@contextmanager
def recording(status: int = 201) -> Iterator[Recorder]:
    server = Recorder(status)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class UdpReceiver:
    """Datagrams sent to a loopback UDP port."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.packets: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets.append(data.decode())

    def metrics(self, timeout: float = 5) -> list[str]:
        """Every metric line received so far (waiting until at least one arrives)."""
        deadline = time.monotonic() + timeout
        while not self.packets and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        return [line for packet in self.packets for line in packet.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@contextmanager
def udp_receiver() -> Iterator[UdpReceiver]:
    receiver = UdpReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
