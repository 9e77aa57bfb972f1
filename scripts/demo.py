"""The end-to-end demo on the embedded defaults: SQLite, this machine, gunicorn on loopback.

Run it with ``make demo``. Each stage prints what it did; any failure exits non-zero.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "sampleproject"
BIN = Path(sys.executable).parent
PORT = 8601


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*args: str) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run(args, cwd=PROJECT, check=True, env={**os.environ, **ENV})


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"gunicorn did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


ENV = {"DJANGO_SETTINGS_MODULE": "settings.dev"}


def main() -> int:
    stage("Migrate the sample project (settings.dev, SQLite under var/)")
    run(sys.executable, "manage.py", "migrate", "--no-input", "-v", "1")
    run(sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0")

    stage(f"Start gunicorn on 127.0.0.1:{PORT}")
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "notesboard.wsgi",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
        ],
        cwd=PROJECT,
        env={**os.environ, **ENV},
    )
    try:
        wait_for_port(PORT)
        stage(f"Fetch http://127.0.0.1:{PORT}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=10) as response:
            body = response.read().decode()
            print(f"HTTP {response.status}, {len(body)} bytes")
        print(body)
        if response.status != 200 or "Notes board" not in body:
            raise SystemExit("The page did not come back as the notes board.")
    finally:
        stage("Stop gunicorn")
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print("\nDemo finished: the sample project served its page from gunicorn.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
