"""Real load for the app-server tests and the reload benchmark.

``Load`` runs HTTP clients in threads against a loopback URL until stopped:
half of them open a new connection per request, half keep one connection
alive and reuse it for as long as the server allows. Every request is
recorded: status, the release that answered (``X-Release``), latency, and
the error when there was no answer. A request counts as failed when it got
no HTTP answer or a status other than 200.

A keep-alive client does what browsers and proxies do with a pooled
connection: when the server closed it while it sat idle (the request could
not be sent, or the connection ended before any byte of an answer), the
request is sent again once on a new connection. That retry is counted
(``retried``), never hidden; a failure on the new connection is a failure.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tests.pipeline_support import Project, current, django_cd_config, get

HEADERS = {"X-Forwarded-Proto": "https"}
#: A request slower than this is a failure (a stall, not a drop, below it).
REQUEST_TIMEOUT = 30.0
#: Pause between two requests of one client: bounded load on a shared machine.
PAUSE = 0.02
#: Hard cap on requests per client (at PAUSE, over half an hour: never the limit of a run).
MAX_REQUESTS = 100000


@dataclass(frozen=True)
class Result:
    status: int  # 0: no HTTP answer
    release: str | None
    seconds: float
    error: str = ""
    keep_alive: bool = False


@dataclass
class Load:
    """``clients`` threads of each kind (new connection / keep-alive) against ``url``."""

    url: str
    clients: int = 2
    results: list[Result] = field(default_factory=list)
    retried: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self._netloc, self._path = parts.netloc, parts.path or "/"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        for keep_alive in (False, True):
            for _ in range(self.clients):
                thread = threading.Thread(target=self._client, args=(keep_alive,), daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)

    def mark(self) -> int:
        """The number of results so far: slice ``results[mark:]`` for one phase."""
        with self._lock:
            return len(self.results)

    def _record(self, result: Result) -> None:
        with self._lock:
            self.results.append(result)

    def _client(self, keep_alive: bool) -> None:
        connection: http.client.HTTPConnection | None = None
        for _ in range(MAX_REQUESTS):
            if self._stop.is_set():
                break
            started = time.monotonic()
            reused = connection is not None
            if connection is None:
                connection = http.client.HTTPConnection(self._netloc, timeout=REQUEST_TIMEOUT)
            try:
                result, connection = self._request(connection, keep_alive, started)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = None
                if keep_alive and reused and _idle_close(error):
                    with self._lock:
                        self.retried += 1
                    connection = http.client.HTTPConnection(self._netloc, timeout=REQUEST_TIMEOUT)
                    try:
                        result, connection = self._request(connection, keep_alive, started)
                    except (OSError, http.client.HTTPException) as again:
                        connection.close()
                        connection = None
                        result = _failed(again, started, keep_alive)
                else:
                    result = _failed(error, started, keep_alive)
            self._record(result)
            time.sleep(PAUSE)
        if connection is not None:
            connection.close()

    def _request(
        self, connection: http.client.HTTPConnection, keep_alive: bool, started: float
    ) -> tuple[Result, http.client.HTTPConnection | None]:
        headers = dict(HEADERS)
        if not keep_alive:
            headers["Connection"] = "close"
        connection.request("GET", self._path, headers=headers)
        response = connection.getresponse()
        response.read()
        result = Result(
            response.status,
            response.getheader("X-Release"),
            time.monotonic() - started,
            keep_alive=keep_alive,
        )
        if not keep_alive or response.will_close:
            connection.close()
            return result, None
        return result, connection


def _idle_close(error: BaseException) -> bool:
    # The server ended a kept-alive connection before answering anything.
    return isinstance(
        error,
        http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError,
    )


def _failed(error: BaseException, started: float, keep_alive: bool) -> Result:
    return Result(
        0, None, time.monotonic() - started, f"{type(error).__name__}: {error}", keep_alive
    )


def failures(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status != 200]


def latency_summary(results: list[Result]) -> dict[str, float]:
    """p50, p99 and max latency in milliseconds."""
    seconds = sorted(r.seconds for r in results)
    if not seconds:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
    return {
        "p50": statistics.median(seconds) * 1000,
        "p99": p99 * 1000,
        "max": seconds[-1] * 1000,
    }


def rollback(
    project: Project, env: str = "staging", *args: str
) -> tuple[int, dict[str, Any], str]:
    result = project.manage("rollback", f"--env={env}", "--json", *args)
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.returncode, data, result.stderr


def master_pid(project: Project, env: str = "staging") -> int:
    status = json.loads(project.manage("server", "status", f"--env={env}", "--json").stdout)
    assert status["running"] is True, status
    return int(status["pid"])


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def get_or_none(url: str) -> tuple[int, str | None, str] | None:
    try:
        return get(url)
    except OSError:
        return None


PDEATHSIG_LAUNCHER = """
import ctypes, json, signal, subprocess, sys
argv, env, cwd = json.loads(sys.stdin.read())
def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
subprocess.run(argv, env=env, cwd=cwd, preexec_fn=die_with_parent, check=True)
"""


def server_command(project: Project, env: str) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and pid file the engine starts ``env``'s master with."""
    from django.test import override_settings

    from django_cd import conf
    from django_cd.pipeline.server import ManagedServer
    from django_cd.pipeline.target import Target

    with override_settings(DJANGO_CD=django_cd_config(project)):
        target = Target(conf.get_environment(env))
        server = target.server
        assert isinstance(server, ManagedServer)
        state = server._state()
        assert state is not None
        run = {key: str(state[key]) for key in ("pidfile", "fifo") if key in state}
        release = target.release(str(current(project, env)))
        return server._argv(release, run), server._server_env(release), Path(run["pidfile"])


def relaunch_with_parent_death_signal(project: Project, env: str, serving: str | None) -> None:
    """Stop ``env``'s master and launch the engine's own command for it again from a
    child process with a parent-death signal (SIGKILL) set, as a host that ties its
    children's lives to its own would; check the daemon outlives that child and its
    parent and serves; then stop it (the caller starts the managed server again)."""
    argv, environ, pidfile = server_command(project, env)
    assert project.manage("server", "stop", f"--env={env}").returncode == 0
    launcher = subprocess.run(
        [sys.executable, "-c", PDEATHSIG_LAUNCHER],
        input=json.dumps([argv, environ, str(project.root(env))]),
        text=True,
        check=False,
        timeout=60,
    )
    assert launcher.returncode == 0
    url = project.url(env)
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon = int(pidfile.read_text())
        time.sleep(1)  # the launcher and its parent are long gone
        os.kill(daemon, 0)
        while get_or_none(url) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert get(url)[:2] == (200, serving)
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while get_or_none(url) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
