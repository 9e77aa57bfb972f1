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
from django_cd.pipeline.host import CHILD_UMASK, Host
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.release import ENV_SNAPSHOT, SNAPSHOT_VARIABLE, VENV_LINK, Release
from django_cd.pipeline.smoke import POLL_SECONDS, wait_for_release

DEFAULT_TIMEOUT = 30.0
#: What gunicorn and uWSGI load: the project's WSGI module after the release's .env.
WSGI_ENTRY = "django_cd.wsgi:application"
RETRY_SECONDS = 2.0
LOG_TAIL_LINES = 30
# Run on the host: exit 0 when "host:port" can be bound as a server would bind it;
# else say why and, on Linux, which process listens there (when /proc shows it).
BIND_PROBE = """
import os, socket, sys
host, _, port = sys.argv[1].rpartition(":")
family = socket.AF_INET6 if ":" in host else socket.AF_INET

def holder():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == int(port) and fields[3] == "0A":
                inodes.add("socket:[%s]" % fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            if links & inodes:
                command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ")
                return f"pid {pid}: {command.decode(errors='replace').strip()[:200]}"
        except OSError:
            continue
    return "a process this user cannot see" if inodes else None

with socket.socket(family) as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(1)
    except OSError as error:
        who = holder()
        sys.exit(error.strerror + (f" (held by {who})" if who else ""))
"""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    detail: str


class AppServer(ABC):
    """What the engine needs from an app server."""

    #: How messages name it; managed servers also name their files after it.
    name = "server"

    def __init__(self, env: Environment, host: Host, layout: Layout) -> None:
        self.env = env
        self.host = host
        self.layout = layout
        self.timeout = float(env.server.get("timeout", DEFAULT_TIMEOUT))

    @property
    def url(self) -> str | None:
        """Where the server itself answers (for reload checks); None if unknown."""
        return self.env.url

    @property
    def wsgi(self) -> str | None:
        """The WSGI application the server loads ("module[:attribute]"), if configured."""
        value = self.env.server.get("wsgi")
        return str(value) if value else None

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

    def log_tail(self) -> str:
        """The last lines of the server's own log ("" when django-cd keeps none)."""
        return ""


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
    virtualenv it runs from. The master runs the interpreter and the code
    through ``current`` (``current/.venv/bin/python``, ``--pythonpath
    current/<dir>``) and works in the deploy root, so nothing it holds pins a
    release that pruning deletes, and a reload picks up a new virtualenv too.
    The address is bound exclusively (no ``SO_REUSEPORT``): a second server on
    it fails to start instead of sharing the traffic.
    """

    @property
    def state_file(self) -> str:
        return posixpath.join(self.layout.run_dir, f"{self.name}.json")

    @property
    def log_file(self) -> str:
        return posixpath.join(self.layout.logs, f"{self.name}.log")

    @property
    def bind(self) -> str:
        return str(self.env.server.get("bind"))

    @property
    def url(self) -> str:
        return f"http://{self.bind}/"

    @abstractmethod
    def _argv(self, release: Release, run: dict[str, str]) -> list[str]:
        """The command that starts a daemonized master writing ``run["pidfile"]``."""

    @abstractmethod
    def _handover(self, state: dict[str, Any], release: Release) -> tuple[int, str]:
        """Serve ``release`` without dropping a request: (the serving master's pid, what
        was done). Raises ``StepFailed`` with the old master still serving."""

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
        if not state:
            return None
        if self.host.pid_alive(int(state["pid"])):
            return int(state["pid"])
        # A command killed between a handover and saving its state: the master that
        # took over the pid file serves (a reload adopts it rather than start another).
        return self._live_pid(str(state.get("pidfile", "")))

    def _live_pid(self, pidfile: str) -> int | None:
        """The live pid in ``pidfile``, or None."""
        if not pidfile or not self.host.exists(pidfile):
            return None
        text = self.host.read_text(pidfile).strip()
        return int(text) if text.isdigit() and self.host.pid_alive(int(text)) else None

    def status(self) -> ServerStatus:
        state = self._state()
        pid = self._running_pid()
        if pid is None or state is None:
            return ServerStatus(False, None, "stopped")
        return ServerStatus(
            True, pid, f"running, pid {pid}, on {self.bind}, since {state['since']}"
        )

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

    def _venv_dir(self, release: Release) -> str:
        """The virtualenv the master runs from: through ``current`` when it points at
        ``release``, so a master that re-executes itself picks up a new virtualenv."""
        if self.layout.current_release(self.host) == release.id:
            return posixpath.join(self.layout.current, VENV_LINK)
        return release.venv

    def _server_env(self, release: Release) -> dict[str, str]:
        # The master holds no project variables: each worker exports the serving
        # release's snapshot of shared/.env when it loads django_cd.wsgi.
        env = release.process_env(env_file=False)
        env[SNAPSHOT_VARIABLE] = posixpath.join(self.layout.current, ENV_SNAPSHOT)
        env["DJANGO_CD_WSGI"] = self._wsgi()
        venv = self._venv_dir(release)
        env["VIRTUAL_ENV"] = venv
        env["PATH"] = posixpath.join(venv, "bin") + ":" + env["PATH"].split(":", 1)[-1]
        # gunicorn takes $PWD (when it is the working directory) as the place to
        # re-execute from: the deploy root, never a release directory.
        env["PWD"] = self.layout.root
        return env

    def _launch(self, release: Release) -> dict[str, Any]:
        self._check_options()
        self._check_bind_free()
        self.host.makedirs(self.layout.run_dir)
        self.host.makedirs(self.layout.logs)
        stamp = str(time.time_ns())
        run = {"pidfile": posixpath.join(self.layout.run_dir, f"{self.name}-{stamp}.pid")}
        run.update(self._run_files(stamp))
        result = self.host.run(
            self._argv(release, run),
            cwd=self.layout.root,
            env=self._server_env(release),
            timeout=self.timeout,
        )
        if not result.ok:
            raise StepFailed(
                "reload", f"{self.name} did not start.", result.output + self.log_tail()
            )
        pid = self._wait_pidfile(run["pidfile"], exclude=None)
        if pid is None:
            raise StepFailed(
                "reload", f"{self.name} did not start (no pid file).", self.log_tail()
            )
        return {
            **run,
            "pid": pid,
            "venv": self._venv_of(release),
            "bind": self.bind,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _wait_pidfile(self, path: str, exclude: int | None) -> int | None:
        """The live pid written to ``path`` within the timeout (not ``exclude``)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.host.exists(path):
                text = self.host.read_text(path).strip()
                if text.isdigit() and int(text) != exclude and self.host.pid_alive(int(text)):
                    return int(text)
            time.sleep(POLL_SECONDS)
        return None

    def bind_problem(self) -> str | None:
        """Why a new master could not listen on ``bind`` (naming the process that does,
        when the host shows it), or None when it can."""
        if self.bind.startswith("unix:"):
            return None
        result = self.host.run([self.host.python, "-c", BIND_PROBE, self.bind], timeout=30)
        if result.ok:
            return None
        why = result.output.strip().splitlines()[-1] if result.output.strip() else "taken"
        return (
            f"The address {self.bind} is taken by another process ({why}), so {self.name} "
            f"of {self.env.name!r} cannot listen there. Stop what listens on it, or give "
            "the environment another server 'bind'."
        )

    def _check_bind_free(self) -> None:
        """Refuse to start on an address another process listens on."""
        problem = self.bind_problem()
        if problem:
            raise StepFailed("reload", problem)

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
            self.log_tail(),
        )

    def start(self, release: Release) -> str:
        if self._running_pid() is not None:
            return self.status().detail
        state = self._launch(release)
        self._save_state(state)
        self._wait_serving(release, state["pid"], "start")
        return f"started {self.name} (pid {state['pid']}) on {self.bind}"

    def reload(self, release: Release) -> str:
        state, pid = self._state(), self._running_pid()
        if pid is None or state is None:
            return self.start(release)
        state = {**state, "pid": pid}  # the master that serves, adopted if need be
        serving, detail = self._handover(state, release)
        self._save_state(
            {
                **state,
                "pid": serving,
                "venv": self._venv_of(release),
                "since": (
                    state["since"]
                    if serving == pid
                    else datetime.now(UTC).isoformat(timespec="seconds")
                ),
            }
        )
        return detail

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
            time.sleep(POLL_SECONDS)
        if self.host.pid_alive(pid):
            self.host.signal(pid, signal.SIGKILL)

    def log_tail(self) -> str:
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
    """gunicorn: a ``USR2`` handover to a new master on the same listening socket.

    ``USR2`` makes the master fork and re-execute its own command line (the
    interpreter through ``current/.venv``, so a new virtualenv is picked up),
    passing the listening socket down (``GUNICORN_FD``); the new master writes
    ``<pidfile>.2`` until its parent is gone. Both sets of workers accept from
    the one socket until the new release answers; then ``TERM`` retires the
    old master gracefully (its workers finish their requests). A new master
    that cannot boot dies alone, and the old one never stopped serving.
    """

    name = "gunicorn"

    def _argv(self, release: Release, run: dict[str, str]) -> list[str]:
        options = self.env.server
        venv = self._venv_dir(release)
        argv = [
            # The interpreter named explicitly: USR2 re-executes sys.executable.
            posixpath.join(venv, "bin", "python"),
            posixpath.join(venv, "bin", "gunicorn"),
            "--daemon",
            "--pid", run["pidfile"],
            "--bind", self.bind,
            "--workers", str(options.get("workers", 2)),
            "--chdir", self.layout.root,
            # The project's directory, then the release root (where django_cd.wsgi
            # is found when django-cd is vendored in the repository, not installed).
            "--pythonpath", f"{self._code_dir()},{self.layout.current}",
            "--graceful-timeout", str(int(self.timeout)),
            "--error-logfile", self.log_file,
            "--capture-output",
            # --daemon resets the umask to gunicorn's own (0): keep logs and pid files private.
            "--umask", oct(CHILD_UMASK),
            "--name", f"django-cd-{self.env.name}",
        ]  # fmt: skip
        if self._has_control_socket(release):
            # One default path (~/.gunicorn/gunicorn.ctl) for every gunicorn of
            # the user would be shared by every environment on the host.
            argv.append("--no-control-socket")
        argv += shlex.split(str(options.get("args", "")))
        return [*argv, WSGI_ENTRY]

    def _has_control_socket(self, release: Release) -> bool:
        result = self.host.run(
            [
                release.python,
                "-c",
                "import gunicorn.config as c; print(hasattr(c, 'ControlSocket'))",
            ],
            env=release.process_env(),
            timeout=60,
        )
        return result.output.strip().endswith("True")

    def _handover(self, state: dict[str, Any], release: Release) -> tuple[int, str]:
        old, pidfile = int(state["pid"]), str(state["pidfile"])
        orphan = self._live_pid(pidfile + ".2")
        if orphan is not None and orphan != old:
            # A new master left by a handover killed half-way: it serves whatever the
            # dead command was deploying, and its parent ignores USR2 while it lives.
            self._terminate(orphan)
        self._remove_stale(pidfile + ".2")
        self.host.signal(old, signal.SIGUSR2)
        new = self._wait_pidfile(pidfile + ".2", exclude=old)
        if new is None:
            raise StepFailed(
                "reload",
                f"gunicorn (pid {old}) started no new master after USR2 "
                f"(waited {self.timeout:.0f} s); the old one keeps serving.",
                self.log_tail(),
            )
        try:
            self._wait_serving(release, new, "USR2 (new master)")
        except StepFailed:
            self._terminate(new)
            raise
        self._terminate(old)
        # The new master ignores the next USR2 until it has noticed that its parent
        # is gone and taken over the pid file: the handover ends there. It looks once
        # per turn of its main loop, which waits up to a second for a signal; SIGCHLD
        # (it only reaps exited workers) starts the next turn now.
        self.host.signal(new, signal.SIGCHLD)
        if self._wait_pidfile(pidfile, exclude=old) != new:
            raise StepFailed(
                "reload",
                f"The new gunicorn master (pid {new}) did not take over {pidfile}.",
                self.log_tail(),
            )
        return (
            new,
            f"new gunicorn master (pid {new}) serves {release.id} after USR2; pid {old} retired",
        )

    def _remove_stale(self, pidfile: str) -> None:
        """Remove a pid file left by a master that died (an earlier failed handover)."""
        if self.host.exists(pidfile):
            text = self.host.read_text(pidfile).strip()
            if not (text.isdigit() and self.host.pid_alive(int(text))):
                self.host.remove(pidfile)

    def _terminate_signal(self) -> int:
        return signal.SIGTERM  # gunicorn's graceful shutdown


class UwsgiServer(ManagedServer):
    """uWSGI: a chain reload through the master FIFO, one worker at a time.

    ``--lazy-apps`` makes each worker import the application itself, from
    ``--pythonpath`` through ``current`` (and its virtualenv's site-packages,
    through ``current/.venv``), so re-spawned workers run the new release while
    the others keep serving. The master works in the deploy root: a worker
    re-spawned after the release it started from was pruned still starts.
    """

    name = "uwsgi"

    def _run_files(self, stamp: str) -> dict[str, str]:
        configured = self.env.server.get("fifo")
        if configured and not self._state():
            return {"fifo": str(configured)}
        return {"fifo": posixpath.join(self.layout.run_dir, f"uwsgi-{stamp}.fifo")}

    def _argv(self, release: Release, run: dict[str, str]) -> list[str]:
        options = self.env.server
        venv = self._venv_dir(release)
        argv = [
            posixpath.join(venv, "bin", "python"),
            posixpath.join(venv, "bin", "uwsgi"),
            "--master",
            "--http-socket", self.bind,
            "--module", WSGI_ENTRY,
            "--pythonpath", self._code_dir(),
            "--pythonpath", self.layout.current,
            "--chdir", self.layout.root,
            "--processes", str(options.get("workers", 2)),
            "--lazy-apps",
            "--need-app",
            "--die-on-term",
            "--master-fifo", run["fifo"],
            "--pidfile", run["pidfile"],
            "--daemonize", self.log_file,
            "--umask", f"{CHILD_UMASK:03o}",
            "--procname-prefix", f"django-cd-{self.env.name} ",
            # --http-socket closes every connection after the answer, but its HTTP/1.1
            # answers did not say so: a client reusing the connection lost a request.
            "--add-header", "Connection: close",
        ]  # fmt: skip
        return argv + shlex.split(str(options.get("args", "")))

    def _handover(self, state: dict[str, Any], release: Release) -> tuple[int, str]:
        pid = int(state["pid"])
        self._chain_reload(state)
        # A chain reload asked for while the previous one still finishes is
        # ignored ("chain reload already running"): ask again until it answers.
        self._wait_serving(release, pid, "chain reload", lambda: self._chain_reload(state))
        return pid, f"chain reload to uwsgi (pid {pid}): new workers serve {release.id}"

    def _chain_reload(self, state: dict[str, Any]) -> None:
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
