"""Release agents: one Django process per release for a deploy's ``manage.py`` commands.

Inside ``with agents(host):`` (a deploy, rollback or repair), ``Release.manage``
sends the commands of ``AGENT_COMMANDS`` to that release's agent
(``manage.py cdagent``, see ``django_cd.agent``) instead of starting a
process for each: Django starts once per release, not once per step. Every
other command, and every command outside a session, runs in its own process
as before.

Nothing else changes: a command's exit status and combined output are what
its own process would have given, its timeout holds (the agent is killed, as
the process would be), and the agent dies with the deploy (``setpriv
--pdeathsig``), so a ``kill -9`` of a deploy during ``migrate`` still stops
the migration. An agent that cannot start (settings that do not load, a
release from before ``cdagent``) is not retried: its commands run as
processes, which report the failure in full.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import selectors
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django_cd.agent import MARKER
from django_cd.pipeline.host import CommandResult, Host, Process

if TYPE_CHECKING:
    from django_cd.pipeline.release import Release

#: The commands a release's agent runs: a deploy's own Django work (and the flag
#: snapshot of its finish). Project steps, backups and anything a project adds keep
#: a process of their own.
AGENT_COMMANDS = frozenset(
    {
        "check",
        "clean_pyc",
        "collectstatic",
        "cdcollect",
        "cdplan",
        "shell",
        "migrate",
        "flags",
        "record_deployment",
    }
)
#: How long an agent may take to start Django and say it is ready.
STARTUP_SECONDS = 120.0
#: How long a closing agent gets to exit before it is killed.
CLOSE_SECONDS = 5.0


class Agent:
    """One running ``manage.py cdagent``."""

    def __init__(self, host: Host, process: Process, scratch: str) -> None:
        self.host = host
        self.process = process
        self.scratch = scratch
        self.calls = 0
        self.ready = False
        self._buffer = b""

    @classmethod
    def start(cls, host: Host, release: Release, env: dict[str, str], scratch: str) -> Agent:
        process = host.spawn(
            [release.python, release.manage_py, "cdagent"], cwd=release.path, env=env
        )
        agent = cls(host, process, scratch)
        try:
            agent.ready = agent._reply(STARTUP_SECONDS) is not None
        except BaseException:
            agent.kill()
            raise
        if not agent.ready:
            agent.kill()
        return agent

    @property
    def alive(self) -> bool:
        return self.ready and self.process.poll() is None

    def call(self, args: Sequence[str], timeout: float, stdin: str | None) -> CommandResult:
        """Run ``manage.py args`` in the agent, as ``Host.run`` would run it."""
        self.calls += 1
        output = posixpath.join(self.scratch, f"{self.process.pid}-{self.calls}.out")
        argv = ("manage.py", *args)
        started = time.monotonic()
        request = {"argv": list(args), "stdin": stdin, "output": output}
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            reply = self._reply(timeout)
        except BrokenPipeError:
            reply = None
        except BaseException:  # Ctrl-C, SIGTERM: the command must not run on
            self.kill()
            raise
        text = _read_and_remove(self.host, output)
        seconds = time.monotonic() - started
        if reply is not None:
            return CommandResult(argv, int(reply["code"]), text, seconds)
        timed_out = self.process.poll() is None
        self.kill()
        if timed_out:
            return CommandResult(argv, -9, text + f"\n(timed out after {timeout:.0f} s)", seconds)
        status = self.process.returncode
        return CommandResult(argv, status or 1, text + f"\n(exited with status {status})", seconds)

    def close(self) -> None:
        """End of input: the agent exits; killed if it does not."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _reply(self, timeout: float) -> dict[str, Any] | None:
        """The agent's next protocol line; None when it dies or ``timeout`` passes."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                line, newline, rest = self._buffer.partition(b"\n")
                if newline:
                    self._buffer = rest
                    text = line.decode(errors="replace")
                    if text.startswith(MARKER + " "):
                        data: dict[str, Any] = json.loads(text[len(MARKER) + 1 :])
                        return data
                    continue  # noise of the project's start-up
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buffer += chunk


class AgentPool:
    """The agents of one command (a deploy, rollback or repair), by release."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.agents: dict[tuple[Any, ...], Agent] = {}
        self.scratch = host.make_temp_dir()

    def manage(
        self, release: Release, args: Sequence[str], timeout: float, stdin: str | None
    ) -> CommandResult | None:
        """The result of ``manage.py args`` run by ``release``'s agent; None when it is
        not a command for the agent, or the agent cannot start (run a process then)."""
        if not args or args[0] not in AGENT_COMMANDS:
            return None
        env = release.process_env()
        # Another .env (a rollback re-snapshots it) needs another process.
        key = (release.path, release.manage_py, tuple(sorted(env.items())))
        agent = self.agents.get(key)
        if agent is not None and not agent.ready:
            return None
        if agent is None or not agent.alive:
            if agent is not None:
                agent.kill()
            agent = Agent.start(self.host, release, env, self.scratch)
            self.agents[key] = agent
            if not agent.ready:
                return None
        return agent.call(args, timeout, stdin)

    def close(self) -> None:
        for agent in self.agents.values():
            if agent.ready:
                agent.close()
        self.agents.clear()
        self.host.remove(self.scratch)


@contextlib.contextmanager
def agents(host: Host) -> Iterator[AgentPool]:
    """Release agents for the commands run inside (nested uses share the pool)."""
    if host.agents is not None:
        yield host.agents
        return
    pool = AgentPool(host)
    host.agents = pool
    try:
        yield pool
    finally:
        host.agents = None
        pool.close()


def _read_and_remove(host: Host, path: str) -> str:
    """What a command wrote (nothing, if the agent died before opening the file)."""
    if not host.exists(path):
        return ""
    try:
        return host.read_text(path)
    finally:
        host.remove(path)
