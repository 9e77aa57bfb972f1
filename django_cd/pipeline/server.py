"""The app server of an environment: start, graceful reload, stop, status.

Every server type offers the same interface, so the engine never asks which
one it drives. ``gunicorn`` and ``uwsgi`` are owned by django-cd on a local
host: started daemonized serving ``<root>/current``, pid file and logs in ``shared/``.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django_cd.conf import Environment
from django_cd.pipeline.errors import PipelineError, StepFailed
from django_cd.pipeline.host import Host
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.release import Release
from django_cd.pipeline.smoke import wait_for_release

DEFAULT_TIMEOUT = 30.0
RETRY_SECONDS = 2.0
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    detail: str


class AppServer(ABC):
    """What the engine needs from an app server."""

    def __init__(self, env: Environment, host: Host, layout: Layout) -> None:
        self.env = env
        self.host = host
        self.layout = layout
        self.timeout = float(env.server.get("timeout", DEFAULT_TIMEOUT))

    @property
    def url(self) -> str | None:
        """Where the server itself answers (for reload checks); None if unknown."""
        return self.env.url

    @abstractmethod
    def start(self, release: Release) -> str: ...

    @abstractmethod
    def reload(self, release: Release) -> str:
        """Serve ``release`` (``current`` already points at it), without dropping requests."""

    @abstractmethod
    def stop(self) -> str: ...

    @abstractmethod
    def status(self) -> ServerStatus: ...

    def venv_in_use(self) -> str | None:
        """The virtualenv (hash) a running server runs from, if django-cd knows it."""
        return None


class NoServer(AppServer):
    """``{"type": "none"}``: something else serves ``current``."""

    def start(self, release: Release) -> str:
        return "no app server is managed (server type none)"

    reload = start

    def stop(self) -> str:
        return self.start(None)  # type: ignore[arg-type]

    def status(self) -> ServerStatus:
        return ServerStatus(False, None, "not managed (server type none)")


class CommandServer(AppServer):
    """``{"type": "command", "reload": "sudo systemctl reload app", ...}``."""

    def _run(self, key: str, release: Release | None) -> str:
        command = self.env.server.get(key)
        if not command:
            return f"no {key!r} command configured"
        env = release.process_env() if release else None
        result = self.host.run(shlex.split(command), env=env, timeout=self.timeout)
        if not result.ok:
            raise StepFailed(
                key,
                f"The server's {key} command failed (exit {result.returncode}).",
                result.output,
            )
        if release is not None and self.url:
            answer = wait_for_release(self.url, release.id, self.timeout)
            if answer is None or answer.release != release.id:
                raise StepFailed(
                    "reload", f"After {command!r}, {self.url} does not serve {release.id}."
                )
        return result.output.strip() or f"ran {command!r}"

    def start(self, release: Release) -> str:
        return self._run("start", release)

    def reload(self, release: Release) -> str:
        return self._run("reload", release)

    def stop(self) -> str:
        return self._run("stop", None)

    def status(self) -> ServerStatus:
        return ServerStatus(False, None, "unknown (server type command)")


class ManagedServer(AppServer):
    """An app server django-cd starts itself: a daemonized master with a pid file.

    The state file in ``shared/run/`` names the running master and the
    virtualenv it runs from. A reload is graceful within one virtualenv; a
    new virtualenv gets a second master on the same address (``reuse-port``),
    and the old one stops gracefully once the new one answers.
    """

    name = "server"
    #: Whether asking for a reload again is harmless (it is re-sent while waiting).
    reload_is_idempotent = False

    @property
    def state_file(self) -> str:
        return posixpath.join(self.layout.run_dir, f"{self.name}.json")

    @property
    def log_file(self) -> str:
        return posixpath.join(self.layout.logs, f"{self.name}.log")

    @property
    def url(self) -> str:
        return f"http://{self.env.server.get('bind')}/"

    @abstractmethod
    def _argv(self, release: Release, run: dict[str, str]) -> list[str]:
        """The command that starts a daemonized master writing ``run["pidfile"]``."""

    @abstractmethod
    def _graceful_reload(self, state: dict[str, Any]) -> str:
        """Ask the running master for new workers on the code ``current`` points at."""

    @abstractmethod
    def _terminate_signal(self) -> int:
        """The signal that stops a master gracefully."""

    def _state(self) -> dict[str, Any] | None:
        if not self.host.exists(self.state_file):
            return None
        state: dict[str, Any] = json.loads(self.host.read_text(self.state_file))
        return state

    def _running_pid(self) -> int | None:
        state = self._state()
        if state and self.host.pid_alive(int(state["pid"])):
            return int(state["pid"])
        return None

    def status(self) -> ServerStatus:
        state = self._state()
        pid = self._running_pid()
        if pid is None or state is None:
            return ServerStatus(False, None, "stopped")
        bind = self.env.server.get("bind")
        return ServerStatus(True, pid, f"running, pid {pid}, on {bind}, since {state['since']}")

    def venv_in_use(self) -> str | None:
        state = self._state()
        if state is None or self._running_pid() is None:
            return None
        return str(state.get("venv"))

    def _venv_of(self, release: Release) -> str:
        link = self.host.readlink(release.venv)
        if link is None:
            raise PipelineError(f"Release {release.id} has no virtualenv; deploy it again.")
        return posixpath.basename(link.rstrip("/"))

    def _check_options(self) -> None:
        options = self.env.server
        if not options.get("bind") or not options.get("wsgi"):
            raise PipelineError(
                f"Environment {self.env.name!r}: django-cd starts {self.name} itself, so its "
                "server needs 'bind' (host:port) and 'wsgi' (the WSGI module), e.g. "
                f"{{'type': '{self.name}', 'bind': '127.0.0.1:8001', 'wsgi': 'myproject.wsgi'}}."
            )

    def _launch(self, release: Release) -> dict[str, Any]:
        self._check_options()
        self.host.makedirs(self.layout.run_dir)
        self.host.makedirs(self.layout.logs)
        stamp = str(time.time_ns())
        run = {"pidfile": posixpath.join(self.layout.run_dir, f"{self.name}-{stamp}.pid")}
        run.update(self._run_files(stamp))
        result = self.host.run(
            self._argv(release, run),
            cwd=self.layout.root,
            env=release.process_env(),
            timeout=self.timeout,
        )
        if not result.ok:
            raise StepFailed(
                "reload", f"{self.name} did not start.", result.output + self._log_tail()
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.host.exists(run["pidfile"]):
                text = self.host.read_text(run["pidfile"]).strip()
                if text.isdigit() and self.host.pid_alive(int(text)):
                    return {
                        **run,
                        "pid": int(text),
                        "venv": self._venv_of(release),
                        "bind": self.env.server.get("bind"),
                        "since": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
            time.sleep(0.05)
        raise StepFailed("reload", f"{self.name} did not start (no pid file).", self._log_tail())

    def _run_files(self, stamp: str) -> dict[str, str]:
        """Extra per-master files (a uWSGI FIFO); none by default."""
        return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.host.write_text(self.state_file, json.dumps(state) + "\n")

    def _wait_serving(
        self, release: Release, pid: int, action: str, again: Callable[[], object] | None = None
    ) -> None:
        """Wait until ``release`` answers; ``again`` re-asks a master that ignored us."""
        deadline = time.monotonic() + self.timeout
        answer = None
        while time.monotonic() < deadline:
            chunk = min(RETRY_SECONDS, deadline - time.monotonic()) if again else self.timeout
            answer = wait_for_release(
                self.url, release.id, max(chunk, 0.1), alive=lambda: self.host.pid_alive(pid)
            )
            if answer is not None and answer.release == release.id:
                return
            if not self.host.pid_alive(pid) or again is None:
                break
            again()
        why = "stopped" if not self.host.pid_alive(pid) else f"does not serve {release.id}"
        raise StepFailed(
            "reload",
            f"{self.name} {why} after {action} (waited up to {self.timeout:.0f} s).",
            self._log_tail(),
        )

    def start(self, release: Release) -> str:
        if self._running_pid() is not None:
            return self.status().detail
        state = self._launch(release)
        self._save_state(state)
        self._wait_serving(release, state["pid"], "start")
        return f"started {self.name} (pid {state['pid']}) on {self.env.server.get('bind')}"

    def reload(self, release: Release) -> str:
        state, pid = self._state(), self._running_pid()
        if pid is None or state is None:
            return self.start(release)
        if state.get("venv") == self._venv_of(release):
            action = self._graceful_reload(state)
            again = (lambda: self._graceful_reload(state)) if self.reload_is_idempotent else None
            self._wait_serving(release, pid, action, again)
            return f"{action} to {self.name} (pid {pid}): new workers serve {release.id}"
        # A new virtualenv cannot be loaded by the running master: start a second
        # master on the same address, then let the old one finish its requests.
        new = self._launch(release)
        try:
            self._wait_serving(release, new["pid"], "start of a new master")
        except StepFailed:
            self._terminate(new["pid"])
            raise
        self._terminate(pid)
        self._save_state(new)
        return (
            f"new {self.name} master (pid {new['pid']}) for the new virtualenv; pid {pid} stopped"
        )

    def stop(self) -> str:
        pid = self._running_pid()
        if pid is None:
            self.host.remove(self.state_file)
            return f"{self.name} was not running"
        self._terminate(pid)
        self.host.remove(self.state_file)
        return f"stopped {self.name} (pid {pid})"

    def _terminate(self, pid: int) -> None:
        self.host.signal(pid, self._terminate_signal())
        deadline = time.monotonic() + self.timeout + 5
        while time.monotonic() < deadline and self.host.pid_alive(pid):
            time.sleep(0.05)
        if self.host.pid_alive(pid):
            self.host.signal(pid, signal.SIGKILL)

    def _log_tail(self) -> str:
        if not self.host.exists(self.log_file):
            return ""
        lines = self.host.read_text(self.log_file).splitlines()[-LOG_TAIL_LINES:]
        return "\n" + "\n".join(lines)

    def _code_dir(self) -> str:
        """Where the WSGI module imports from, through ``current``."""
        return posixpath.join(self.layout.current, posixpath.dirname(self.env.manage))

    def _wsgi(self) -> str:
        wsgi = str(self.env.server.get("wsgi"))
        return wsgi if ":" in wsgi else wsgi + ":application"


class GunicornServer(ManagedServer):
    """gunicorn: ``HUP`` starts new workers that import the new ``current``."""

    name = "gunicorn"

    def _argv(self, release: Release, run: dict[str, str]) -> list[str]:
        options = self.env.server
        # --chdir through ``current``: after a switch, HUP makes new workers
        # import the new release.
        argv = [
            posixpath.join(self.layout.venvs, self._venv_of(release), "bin", "gunicorn"),
            "--daemon",
            "--pid", run["pidfile"],
            "--bind", str(options.get("bind")),
            "--workers", str(options.get("workers", 2)),
            "--chdir", self._code_dir(),
            "--reuse-port",
            "--graceful-timeout", str(int(self.timeout)),
            "--error-logfile", self.log_file,
            "--capture-output",
            "--name", f"django-cd-{self.env.name}",
        ]  # fmt: skip
        argv += shlex.split(str(options.get("args", "")))
        return [*argv, self._wsgi()]

    def _graceful_reload(self, state: dict[str, Any]) -> str:
        self.host.signal(int(state["pid"]), signal.SIGHUP)
        return "HUP"

    def _terminate_signal(self) -> int:
        return signal.SIGTERM  # gunicorn's graceful shutdown


class UwsgiServer(ManagedServer):
    """uWSGI: a chain reload through the master FIFO, one worker at a time.

    ``--lazy-apps`` makes each worker import the application itself, from
    ``--pythonpath`` through ``current``, so re-spawned workers run the new
    release while the others keep serving.
    """

    name = "uwsgi"
    # A chain reload asked for while the previous one still finishes is ignored
    # ("chain reload already running"): ask again until the new release answers.
    reload_is_idempotent = True

    def _run_files(self, stamp: str) -> dict[str, str]:
        configured = self.env.server.get("fifo")
        if configured and not self._state():
            return {"fifo": str(configured)}
        return {"fifo": posixpath.join(self.layout.run_dir, f"uwsgi-{stamp}.fifo")}

    def _argv(self, release: Release, run: dict[str, str]) -> list[str]:
        options = self.env.server
        argv = [
            posixpath.join(self.layout.venvs, self._venv_of(release), "bin", "uwsgi"),
            "--master",
            "--http-socket", str(options.get("bind")),
            "--module", self._wsgi(),
            "--pythonpath", self._code_dir(),
            "--chdir", self._code_dir(),
            "--processes", str(options.get("workers", 2)),
            "--lazy-apps",
            "--need-app",
            "--die-on-term",
            "--reuse-port",
            "--master-fifo", run["fifo"],
            "--pidfile", run["pidfile"],
            "--daemonize", self.log_file,
            "--procname-prefix", f"django-cd-{self.env.name} ",
        ]  # fmt: skip
        return argv + shlex.split(str(options.get("args", "")))

    def _graceful_reload(self, state: dict[str, Any]) -> str:
        fifo = str(state["fifo"])
        # "c": chain reload. Written by a child so a master that stopped reading
        # cannot block the deploy on a FIFO with no reader.
        result = self.host.run(
            ["sh", "-c", 'printf c > "$0"', fifo], timeout=min(self.timeout, 10.0)
        )
        if not result.ok:
            raise StepFailed(
                "reload", f"Writing to the uWSGI master FIFO {fifo} failed.", result.output
            )
        return "chain reload"

    def _terminate_signal(self) -> int:
        return signal.SIGTERM  # with --die-on-term: graceful shutdown


SERVER_TYPES: dict[str, type[AppServer]] = {
    "none": NoServer,
    "command": CommandServer,
    "gunicorn": GunicornServer,
    "uwsgi": UwsgiServer,
}


def server_for(env: Environment, host: Host, layout: Layout) -> AppServer:
    """The app server of ``env`` on ``host``."""
    try:
        server_class = SERVER_TYPES[env.server.type]
    except KeyError:
        raise PipelineError(
            f"Server type {env.server.type!r} is not supported yet by the deploy engine. "
            f"Use one of {', '.join(SERVER_TYPES)}."
        ) from None
    return server_class(env, host, layout)
