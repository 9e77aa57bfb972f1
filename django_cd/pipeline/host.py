"""Where releases live and commands run: a ``Host``.

``LocalHost`` is this machine; ``SSHHost`` (``pipeline.ssh``, through Fabric)
is another one. The engine only talks to a host through these methods.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from django_cd.pipeline import bytecode, digest
from django_cd.pipeline.files import Privacy

if TYPE_CHECKING:
    from django_cd.pipeline.agent import AgentPool

#: What the engine's commands (and the app servers they start) create files with:
#: group-readable at most, nothing for others (logs hold tracebacks, backups hold data).
CHILD_UMASK = 0o027

# util-linux's setpriv sets the parent-death signal, then execs the command.
# Not a preexec_fn: with one, CPython runs its at-fork callbacks in the deploy
# process, and a SIGTERM arriving there is swallowed as an "ignored exception".
_SETPRIV = shutil.which("setpriv")


def _dies_with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` run so that it dies when the deploy dies.

    A ``kill -9`` of ``deploy`` must not leave its ``migrate`` running on,
    re-parented, to finish a migration nobody will switch to: SIGKILL makes the
    database roll the interrupted migration's transaction back. Daemons (gunicorn
    ``--daemon``, uWSGI ``--daemonize``) fork again, which clears the signal, so
    app servers outlive the command that started them, as they must.
    """
    if _SETPRIV is None:  # not Linux, or no util-linux: the journal still tells
        return list(argv)
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


@dataclass(frozen=True)
class CommandResult:
    """What one command did: exit status, combined output, wall time."""

    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class ProcessInput(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class ProcessOutput(Protocol):
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class Process(Protocol):
    """A process started by ``Host.spawn``: the part of ``subprocess.Popen`` the engine
    uses. ``stdout`` is a real file descriptor (a pipe), read with ``os.read``."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def stdin(self) -> ProcessInput | None: ...
    @property
    def stdout(self) -> ProcessOutput | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


class Host(ABC):
    """A machine that holds an environment's releases."""

    #: How the host is named in locks, history and messages.
    name: str
    #: The Python that builds release virtualenvs on this host.
    python: str
    #: Modes and group of what the engine writes (``Target`` sets the environment's).
    privacy: Privacy = Privacy()
    #: The release agents of the command at work, if it opened them (``pipeline.agent``).
    agents: AgentPool | None = None

    def connect(self) -> None:
        """Reach the host now: an SSH host opens its connection, or raises a
        ``PipelineError`` naming the host and the fix; this machine is always here."""
        return None

    def close(self) -> None:
        """Let go of the host: an SSH host closes its connection (and every process
        started through it dies); this machine has nothing to close."""
        return None

    @abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run ``argv``; never raises for a failing command, only reports it."""

    @abstractmethod
    def spawn(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]) -> Process:
        """Start ``argv`` with pipes to its stdin and its combined stdout and stderr;
        like ``run``, it dies with the command that started it."""

    @abstractmethod
    def guard(self, path: str) -> contextlib.AbstractContextManager[None]:
        """Hold an exclusive lock on ``path`` while inside: the critical section in
        which the deploy lock is inspected, broken, taken or freed. Released by the
        operating system when the holder dies, so it can never go stale itself."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def is_file(self, path: str) -> bool:
        """True for a regular file (not a link, directory, socket or FIFO)."""

    @abstractmethod
    def read_text(self, path: str) -> str: ...

    @abstractmethod
    def write_text(self, path: str, text: str, *, mode: int | None = None) -> None:
        """Write atomically and durably: readers see the old or the new content, never half.

        ``mode`` defaults to the host's private file mode.
        """

    @abstractmethod
    def append_text(self, path: str, text: str) -> None:
        """Append one record durably; a record cut short never swallows this one."""

    @abstractmethod
    def create_exclusive(self, path: str, text: str) -> bool:
        """Create ``path`` holding ``text`` unless it exists; True when created.

        The file is complete the moment another process can see it.
        """

    @abstractmethod
    def set_mode(self, path: str, mode: int) -> None:
        """Give ``path`` exactly ``mode`` (and the host's group, if one is configured)."""

    @abstractmethod
    def modified_at(self, path: str) -> float:
        """When ``path`` was last written (seconds since the epoch)."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file, link or directory tree; nothing if it is absent."""

    @abstractmethod
    def makedirs(self, path: str, *, mode: int | None = None) -> None:
        """Create ``path`` and missing parents; those it creates get ``mode``
        (default: the host's private directory mode)."""

    @abstractmethod
    def listdir(self, path: str) -> list[str]: ...

    @abstractmethod
    def readlink(self, path: str) -> str | None: ...

    @abstractmethod
    def switch_link(self, link: str, target: str) -> None:
        """Point ``link`` at ``target`` in one rename: never a moment without it."""

    @abstractmethod
    def extract_tar(self, data: bytes, dest: str) -> None: ...

    @abstractmethod
    def tree_digest(self, path: str, *, tracked: bool = False) -> str:
        """A hash of every file's path and content under ``path`` (caches, virtualenvs and
        build output left out); ``tracked``: only the files git tracks there, when
        ``path`` is in a git work tree (their working-tree content)."""

    @abstractmethod
    def byte_compile(self, path: str, previous: str | None) -> dict[str, int]:
        """Compile the release at ``path`` with the host's Python, taking ``previous``'s
        ``.pyc`` files where the source is unchanged (``pipeline.bytecode``)."""

    @abstractmethod
    def make_temp_dir(self) -> str:
        """A new empty directory outside any deploy root; the caller removes it."""

    @abstractmethod
    def free_space(self, path: str) -> tuple[str, int]:
        """The nearest existing directory at or above ``path``, and the bytes free to
        this user on its filesystem."""

    @abstractmethod
    def pid_alive(self, pid: int) -> bool: ...

    @abstractmethod
    def signal(self, pid: int, signum: int) -> bool:
        """Send ``signum``; False when the process is gone."""


class LocalHost(Host):
    """The machine running the command."""

    def __init__(self) -> None:
        self.name = socket.gethostname()
        self.python = sys.executable

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        started = time.monotonic()
        try:
            completed = subprocess.run(
                _dies_with_parent(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
                umask=CHILD_UMASK,
            )
        except subprocess.TimeoutExpired as expired:
            output = expired.output or ""
            if isinstance(output, bytes):
                output = output.decode(errors="replace")
            output += f"\n(timed out after {timeout:.0f} s)"
            return CommandResult(tuple(argv), -9, output, time.monotonic() - started)
        except OSError as error:
            return CommandResult(tuple(argv), 127, str(error), time.monotonic() - started)
        return CommandResult(
            tuple(argv), completed.returncode, completed.stdout, time.monotonic() - started
        )

    def spawn(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            _dies_with_parent(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            umask=CHILD_UMASK,
        )

    @contextlib.contextmanager
    def guard(self, path: str) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def is_file(self, path: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(path).st_mode)
        except FileNotFoundError:
            return False

    def read_text(self, path: str) -> str:
        return Path(path).read_text()

    def write_text(self, path: str, text: str, *, mode: int | None = None) -> None:
        temporary = self._complete_temporary(path, text, mode)
        try:
            os.replace(temporary, path)
        except BaseException:
            _unlink_quietly(temporary)
            raise
        _fsync_directory(os.path.dirname(path))

    def append_text(self, path: str, text: str) -> None:
        # One write() on an O_APPEND file: concurrent appenders never interleave lines.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self._own(fd, self.privacy.file_mode)
            size = os.fstat(fd).st_size
            # A line cut short by a crash or a full disk gets its end here, so it
            # costs only itself, not this record too.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text
            data = text.encode()
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
                os.fsync(fd)
            except OSError:
                # Take a partial record back when nobody appended after it.
                if os.fstat(fd).st_size > size:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    def create_exclusive(self, path: str, text: str) -> bool:
        temporary = self._complete_temporary(path, text, None)
        try:
            # link() fails when the name exists, and the name appears with the
            # whole content already behind it: no reader ever sees a half file.
            os.link(temporary, path)
        except FileExistsError:
            return False
        finally:
            _unlink_quietly(temporary)
        _fsync_directory(os.path.dirname(path))
        return True

    def _complete_temporary(self, path: str, text: str, mode: int | None) -> str:
        """A temporary file next to ``path`` holding ``text``, synced, with its final mode."""
        directory, name = os.path.split(path)
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
        try:
            try:
                self._own(fd, self.privacy.file_mode if mode is None else mode)
                data = memoryview(text.encode())
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quietly(temporary)
            raise
        return temporary

    def _own(self, fd: int, mode: int) -> None:
        if self.privacy.gid != -1:
            os.fchown(fd, -1, self.privacy.gid)
        os.fchmod(fd, mode)

    def set_mode(self, path: str, mode: int) -> None:
        if self.privacy.gid != -1:
            os.chown(path, -1, self.privacy.gid, follow_symlinks=False)
        os.chmod(path, mode)

    def modified_at(self, path: str) -> float:
        return os.stat(path).st_mtime

    def remove(self, path: str) -> None:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)

    def makedirs(self, path: str, *, mode: int | None = None) -> None:
        missing = []
        head = os.path.abspath(path)
        while not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)
            self.set_mode(directory, self.privacy.dir_mode if mode is None else mode)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(path)
        except (FileNotFoundError, OSError):
            return None

    def switch_link(self, link: str, target: str) -> None:
        temporary = f"{link}.tmp-{os.getpid()}"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, link)

    def extract_tar(self, data: bytes, dest: str) -> None:
        os.makedirs(dest, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            archive.extractall(dest, filter="data")

    def tree_digest(self, path: str, *, tracked: bool = False) -> str:
        return digest.tree_digest(path, tracked=tracked)

    def byte_compile(self, path: str, previous: str | None) -> dict[str, int]:
        # The venvs are built with this interpreter: the same version, the same .pyc.
        return bytecode.byte_compile(path, previous)

    def make_temp_dir(self) -> str:
        return tempfile.mkdtemp(prefix="django-cd-")

    def free_space(self, path: str) -> tuple[str, int]:
        while not os.path.exists(path) and path != "/":
            path = os.path.dirname(path)
        return path, shutil.disk_usage(path).free

    def pid_alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(pid)

    def signal(self, pid: int, signum: int) -> bool:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _fsync_directory(directory: str) -> None:
    # The rename or link is durable only once the directory entry is on disk.
    fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_zombie(pid: int) -> bool:
    # A zombie answers kill(pid, 0) yet serves nothing.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


__all__ = ["CommandResult", "Host", "LocalHost", "Process"]
