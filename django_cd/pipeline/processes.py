"""Role processes: the workers, schedulers and daemons an environment runs from each release.

An environment's ``processes`` (``conf.Process``) are started detached from
the command that starts them (a new session, output appended to
``shared/log/role-<name>.log``), each from one release's directory with that
release's environment, exactly as ``Release.manage`` runs: the target's
settings module and the release's copy of ``shared/.env``. Their pid and
release are kept in ``shared/run/role-<name>.json``, as the managed app
server keeps its own.

After the app server serves a release, ``restart`` brings every role process
to that release: one that runs another release is stopped (its
``stop_signal``, then KILL after ``stop_timeout``) and started anew; one that
already runs it (a repair, an undo before this step ran) is kept, or sent its
``reload_signal`` if it declares one. A new or reloaded process must stay alive
for its ``settle`` seconds, or the step fails with the last lines of its log,
and the deploy is undone like one whose web server did not come back.

Everything goes through ``Host``: ``run`` starts a small launcher with the
host's Python, ``pid_alive`` and ``signal`` watch and stop, so an SSH host
runs role processes as it runs commands.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django_cd.conf import Process
from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.files import LOG_MODE
from django_cd.pipeline.release import Release
from django_cd.pipeline.smoke import POLL_SECONDS

if TYPE_CHECKING:
    from django_cd.pipeline.steps import StepRunner
    from django_cd.pipeline.target import Target

STEP = "processes"
LOG_TAIL_LINES = 30
#: How long a process that got KILL may take to disappear.
KILL_WAIT_SECONDS = 5.0
#: Given to the process: which role it plays.
ROLE_VARIABLE = "DJANGO_CD_ROLE"
_PREFIX = "role-"
# Run with the host's Python: fork; the child starts a new session (so neither the
# deploy's end nor its terminal's signals reach it), appends its output to the log,
# works in the release directory and execs the command. The parent prints the pid,
# or fails with why the exec failed (a close-on-exec pipe tells which).
LAUNCHER = """
import os, sys
log, cwd, marker, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        os.close(read)
        os.setsid()
        os.chdir(cwd)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        os.write(out, (marker % os.getpid() + "\\n").encode())
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.execvp(argv[0], argv)
    except BaseException as error:
        os.write(write, f"{type(error).__name__}: {error}".encode())
    os._exit(127)
os.close(write)
failure = os.read(read, 4096)
if failure:
    os.waitpid(pid, 0)
    sys.exit(failure.decode(errors="replace"))
print(pid)
"""


@dataclass(frozen=True)
class Started:
    """A process ``restart`` started or reloaded, to watch until it has settled."""

    process: Process
    pid: int
    release: str
    at: float


class RoleProcesses:
    """The role processes of one environment on one host (``Target``)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.host, self.layout = target.host, target.layout
        self.configured = {process.name: process for process in target.env.processes}

    # Files ------------------------------------------------------------------

    def state_file(self, name: str) -> str:
        return posixpath.join(self.layout.run_dir, f"{_PREFIX}{name}.json")

    def log_file(self, name: str) -> str:
        return posixpath.join(self.layout.logs, f"{_PREFIX}{name}.log")

    def state(self, name: str) -> dict[str, Any] | None:
        path = self.state_file(name)
        if not self.host.exists(path):
            return None
        try:
            data = json.loads(self.host.read_text(path))
        except ValueError:
            return None  # damaged: the process it named is unknown, a restart starts anew
        return data if isinstance(data, dict) else None

    def recorded(self) -> list[str]:
        """Roles with a state file, configured or not (a role removed from settings)."""
        return sorted(
            name[len(_PREFIX) : -len(".json")]
            for name in self.host.listdir(self.layout.run_dir)
            if name.startswith(_PREFIX) and name.endswith(".json")
        )

    def alive(self, state: Mapping[str, Any] | None) -> bool:
        return state is not None and self.host.pid_alive(int(state["pid"]))

    # Actions ----------------------------------------------------------------

    def restart(self, release: Release | None) -> str:
        """Bring every role process to ``release`` (None: stop them all); raises
        ``StepFailed`` naming a process that did not stay up, with its log's end."""
        done: list[str] = []
        for name in self.recorded():
            if release is None or name not in self.configured:
                done.append(self.stop(name))
        if release is None:
            return "; ".join(done) or "no role processes ran"
        watch: list[Started] = []
        for process in self.configured.values():
            detail, started = self._bring(process, release)
            done.append(detail)
            if started is not None:
                watch.append(started)
        self._settle(watch)
        return "; ".join(done)

    def _bring(self, process: Process, release: Release) -> tuple[str, Started | None]:
        state = self.state(process.name)
        argv, env = self._command(process, release)
        same = (
            self.alive(state)
            and state is not None
            and state.get("release") == release.id
            and state.get("argv") == argv
            and state.get("env") == _digest(env)
        )
        if same and state is not None:
            pid = int(state["pid"])
            if process.reload_signal is None:
                return f"{process.name} (pid {pid}) runs {release.id} already", None
            self.host.signal(pid, _signum(process.reload_signal))
            started = Started(process, pid, release.id, time.monotonic())
            return f"{process.name} (pid {pid}) reloaded with SIG{process.reload_signal}", started
        stopped = ""
        if self.alive(state) and state is not None:
            self._terminate(int(state["pid"]), process.stop_signal, process.stop_timeout)
            stopped = f"pid {state['pid']} stopped, "
        pid = self._launch(process, release, argv, env)
        started = Started(process, pid, release.id, time.monotonic())
        return f"{process.name}: {stopped}pid {pid} started from {release.id}", started

    def _command(self, process: Process, release: Release) -> tuple[list[str], dict[str, str]]:
        argv = list(process.command)
        if argv[0] == "manage.py":
            argv[:1] = [release.python, release.manage_py]
        env = release.process_env()
        env[ROLE_VARIABLE] = process.name
        return argv, env

    def _launch(
        self, process: Process, release: Release, argv: list[str], env: dict[str, str]
    ) -> int:
        self.host.makedirs(self.layout.run_dir)
        self.host.makedirs(self.layout.logs)
        log = self.log_file(process.name)
        marker = (
            f"--- django-cd {_now()}: {process.name} from release {release.id} "
            "starts as pid %d ---"
        )
        result = self.host.run(
            [self.host.python, "-c", LAUNCHER, log, release.path, marker, *argv],
            env=env,
            timeout=60,
        )
        pid_text = result.output.strip().splitlines()[-1:] if result.ok else []
        if not pid_text or not pid_text[0].isdigit():
            raise StepFailed(
                STEP,
                f"Role process {process.name!r} ({shlex.join(process.command)}) could not be "
                f"started from release {release.id}: {result.output.strip() or 'no pid'}. Fix "
                "the command in the environment's 'processes'.",
            )
        self.host.set_mode(log, LOG_MODE)
        pid = int(pid_text[0])
        state = {
            "role": process.name,
            "pid": pid,
            "release": release.id,
            "command": shlex.join(process.command),
            "argv": argv,
            "env": _digest(env),
            "log": log,
            "since": _now(),
        }
        self.host.write_text(self.state_file(process.name), json.dumps(state) + "\n")
        return pid

    def _settle(self, watch: list[Started]) -> None:
        """Wait, polling finely, until each process has lived its ``settle`` seconds;
        fail at the first that exits."""
        pending = list(watch)
        while pending:
            for started in list(pending):
                if not self.host.pid_alive(started.pid):
                    self._failed(started)
                if time.monotonic() - started.at >= started.process.settle:
                    pending.remove(started)
            if pending:
                time.sleep(POLL_SECONDS)

    def _failed(self, started: Started) -> None:
        process = started.process
        raise StepFailed(
            STEP,
            f"Role process {process.name!r} ({shlex.join(process.command)}) exited within "
            f"{process.settle:g} s of its start from release {started.release}; see "
            f"{self.log_file(process.name)}.",
            self.target.mask(self.log_tail(process.name)),
        )

    def stop(self, name: str) -> str:
        """Stop role ``name`` (configured or left from an earlier configuration)."""
        state = self.state(name)
        process = self.configured.get(name)
        stop_signal = process.stop_signal if process else "TERM"
        timeout = process.stop_timeout if process else 10.0
        detail = f"{name} was not running"
        if state is not None and self.alive(state):
            self._terminate(int(state["pid"]), stop_signal, timeout)
            detail = f"{name} (pid {state['pid']}) stopped"
        self.host.remove(self.state_file(name))
        return detail

    def _terminate(self, pid: int, stop_signal: str, timeout: float) -> None:
        self.host.signal(pid, _signum(stop_signal))
        if self._gone(pid, timeout):
            return
        self.host.signal(pid, signal.SIGKILL)
        if not self._gone(pid, KILL_WAIT_SECONDS):
            raise StepFailed(STEP, f"Process {pid} survived SIGKILL; stop it by hand.")

    def _gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.host.pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def log_tail(self, name: str) -> str:
        """The last lines the role's latest process wrote (from its start marker on)."""
        log = self.log_file(name)
        if not self.host.exists(log):
            return ""
        result = self.host.run(["tail", "-n", str(LOG_TAIL_LINES), log], timeout=30)
        lines = result.output.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("--- django-cd ")]
        return "\n".join(lines[starts[-1] :] if starts else lines)

    # Status -----------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Each role process: configured or left over, its pid, release, whether alive."""
        rows = []
        for name in sorted({*self.configured, *self.recorded()}):
            state = self.state(name)
            rows.append(
                {
                    "role": name,
                    "configured": name in self.configured,
                    "pid": state.get("pid") if state else None,
                    "release": state.get("release") if state else None,
                    "alive": self.alive(state),
                    "since": state.get("since") if state else None,
                    "log": self.log_file(name),
                }
            )
        return rows


def restart_step(
    runner: StepRunner, target: Target, release: Release | None, *, quiet: bool = False
) -> None:
    """The ``processes`` step: every role process to ``release`` (None: stopped).

    With no role process configured or running, the step is recorded as skipped,
    or, ``quiet`` (an undo, a rollback, a repair), not recorded at all.
    """
    processes = RoleProcesses(target)
    if not processes.configured and not processes.recorded():
        if not quiet:
            runner.skip(STEP, "the environment has no role processes")
        return
    runner.run(STEP, lambda: processes.restart(release))


def problems(rows: list[dict[str, Any]], current: str | None) -> list[str]:
    """What ``status`` must point out: a role process down, or on another release."""
    found: list[str] = []
    if current is None:  # nothing deployed: nothing should run
        return found
    for row in rows:
        if row["configured"] and not row["alive"]:
            found.append(
                f"Role process {row['role']!r} is not running (last pid {row['pid']}, release "
                f"{row['release']}); its log is {row['log']}. The next deploy or rollback "
                "starts it."
            )
        elif row["configured"] and row["release"] != current:
            found.append(
                f"Role process {row['role']!r} (pid {row['pid']}) runs release "
                f"{row['release']}, not the current {current}: the next deploy or rollback "
                "restarts it with the release it makes current."
            )
    return found


def describe_process(row: Mapping[str, Any]) -> str:
    """One line of ``status`` for a role process."""
    if row["pid"] is None:
        return f"{row['role']}: not started"
    state = "running" if row["alive"] else "NOT RUNNING"
    extra = "" if row["configured"] else " (no longer configured)"
    return (
        f"{row['role']}: {state}, pid {row['pid']}, release {row['release']}, "
        f"since {row['since']}{extra}"
    )


def _signum(name: str) -> int:
    return int(signal.Signals[f"SIG{name}"])


def _digest(env: Mapping[str, str]) -> str:
    """Whether two starts had the same environment, without keeping its secrets."""
    text = "\0".join(f"{k}={v}" for k, v in sorted(env.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
