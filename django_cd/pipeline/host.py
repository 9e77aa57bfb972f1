"""Where releases live and commands run: a ``Host``.

``LocalHost`` is this machine. An SSH host (through Fabric) implements the
same methods later; the engine only talks to a host through them.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Files that differ between identical trees and must not change a content hash.
_IGNORED_PARTS = ("__pycache__", ".git")


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


class Host(ABC):
    """A machine that holds an environment's releases."""

    #: How the host is named in locks, history and messages.
    name: str
    #: The Python that builds release virtualenvs on this host.
    python: str

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
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def read_text(self, path: str) -> str: ...

    @abstractmethod
    def write_text(self, path: str, text: str) -> None:
        """Write atomically: readers see the old or the new content, never half."""

    @abstractmethod
    def append_text(self, path: str, text: str) -> None: ...

    @abstractmethod
    def create_exclusive(self, path: str, text: str) -> bool:
        """Create ``path`` holding ``text`` unless it exists; True when created."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file, link or directory tree; nothing if it is absent."""

    @abstractmethod
    def makedirs(self, path: str) -> None: ...

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
    def tree_digest(self, path: str) -> str:
        """A hash of every file's path and content under ``path``."""

    @abstractmethod
    def make_temp_dir(self) -> str:
        """A new empty directory outside any deploy root; the caller removes it."""

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
                list(argv),
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

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def read_text(self, path: str) -> str:
        return Path(path).read_text()

    def write_text(self, path: str, text: str) -> None:
        temporary = f"{path}.tmp-{os.getpid()}"
        Path(temporary).write_text(text)
        os.replace(temporary, path)

    def append_text(self, path: str, text: str) -> None:
        # One write() on an O_APPEND file: concurrent appenders never interleave lines.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def create_exclusive(self, path: str, text: str) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return True

    def remove(self, path: str) -> None:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

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

    def tree_digest(self, path: str) -> str:
        digest = hashlib.sha256()
        base = Path(path)
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(base).as_posix() if file != base else file.name
            if any(part in _IGNORED_PARTS for part in file.parts) or file.suffix == ".pyc":
                continue
            digest.update(relative.encode() + b"\0" + file.read_bytes() + b"\0")
        return digest.hexdigest()

    def make_temp_dir(self) -> str:
        return tempfile.mkdtemp(prefix="django-cd-")

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


def _is_zombie(pid: int) -> bool:
    # A zombie answers kill(pid, 0) yet serves nothing.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


__all__ = ["CommandResult", "Host", "LocalHost"]
