"""A host reached over SSH: ``SSHHost``, through Fabric's ``Connection``.

It keeps the promises of ``LocalHost`` (see ``pipeline.host``) on the remote
machine, over one connection opened once and reused:

- reads and stats go through SFTP; writes that must be atomic and durable run
  a short POSIX shell script (SFTP cannot fsync), which writes a temporary
  file, syncs it, renames it into place and syncs the directory;
- commands run under ``setpriv --pdeathsig KILL`` with ``sshd`` as their
  parent, so when the connection drops (the deploy was killed) they die too;
  their first output line is their pid, which a timeout or ``kill`` signals;
- the guard is a ``flock`` on the remote file held by a process that lives
  as long as its channel: it ends, and the lock with it, when the guard is
  left or the connection dies;
- ``extract_tar`` applies tarfile's ``data`` filter here (rejecting what
  ``LocalHost`` rejects, with the same exceptions) and streams the filtered
  archive to the remote GNU ``tar``;
- ``tree_digest`` runs ``pipeline.digest`` itself in the remote Python.

The remote machine needs a POSIX login shell, GNU coreutils and tar,
util-linux (``setpriv``, ``flock``) and the configured Python: any Linux
server.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import io
import json
import logging
import os
import posixpath
import re
import secrets
import shlex
import signal as signals
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from django_cd.pipeline import bytecode, digest
from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.host import CHILD_UMASK, CommandResult, Host
from django_cd.pipeline.hostspec import HostSpec

try:
    import paramiko
    from fabric import Connection

    from django_cd.pipeline.ssh_connect import open_connection
except ImportError as missing:  # pragma: no cover - the ssh extra is in dev
    raise ImportError("SSH hosts need Fabric: pip install 'django-cd-deploy[ssh]'") from missing

#: What ``extract_tar`` checks members against: only their place relative to the
#: destination matters, so a path that exists nowhere keeps the check lexical.
_FILTER_ROOT = "/django-cd-extract-destination"
#: The temporary file of the write scripts, as the shell names it.
_TEMPORARY = '"$t"'
#: What a shell accepts as a variable name (others go on the command line of ``env``:
#: they are rare, and the shell could not carry them).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Run by ``sh FILE ARGV...`` under ``env -i``: exactly FILE's variables, then ARGV. dash
#: exports a PWD of its own; one from FILE is kept.
_LOAD_ENV = 'unset PWD; set -a; . "$1"; rm -f -- "$1"; shift; exec "$@"'
#: Run by ``sh PPID FILE ARGV...`` under setpriv: ARGV, if the parent is still PPID (else
#: the connection closed before the death signal was asked for: FILE is removed, no ARGV).
_PARENT_CHECK = (
    '[ "$PPID" = "$1" ] || { [ -z "$2" ] || rm -f -- "$2"; exit 129; }; shift 2; exec "$@"'
)
#: How long leaving a guard waits for the remote lock holder to exit.
_GUARD_RELEASE_SECONDS = 10.0

# paramiko logs every connection and SFTP session at INFO: noise in a deploy's output
# under a project whose root logger takes INFO. A level the project set stays.
for _name in ("paramiko", "paramiko.transport", "paramiko.transport.sftp"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


class SSHHost(Host):
    """A machine reached over SSH, with the semantics of ``LocalHost``."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.name = spec.address
        self.python = spec.python
        self._connection: Connection | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._setpriv: str | None = None
        self._lock = threading.RLock()

    # -- the connection ---------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (once); a ``PipelineError`` naming the host and the fix
        when it cannot be opened."""
        with self._lock:
            if self._connection is not None and self._connection.is_connected:
                return
            connection = open_connection(self.spec)
            try:
                found = _exec(connection, "command -v setpriv || true")
            except BaseException:
                connection.close()
                raise
            self._setpriv = found[1].decode().strip() or None
            self._connection = connection
            self._sftp = None

    def close(self) -> None:
        """Close the connection: every process started through it dies with it."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self._sftp = None

    def __enter__(self) -> SSHHost:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transport(self) -> paramiko.Transport:
        self.connect()
        assert self._connection is not None
        transport: paramiko.Transport | None = self._connection.transport
        assert transport is not None
        return transport

    @contextlib.contextmanager
    def _files(self) -> Iterator[paramiko.SFTPClient]:
        """The SFTP session, one at a time (paramiko's client is not thread-safe)."""
        with self._lock:
            if self._sftp is None:
                self._transport()
                assert self._connection is not None
                self._sftp = self._connection.sftp()
            yield self._sftp

    def _shell(self, script: str, stdin: bytes = b"", path: str | None = None) -> bytes:
        """Run a short script of ours; its output, or the ``OSError`` it reported."""
        code, output = _exec_on(self._transport(), script, stdin)
        if code != 0:
            raise _os_error(output.decode(errors="replace"), path)
        return output

    # -- commands ---------------------------------------------------------------------

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
            channel = self._start(argv, cwd, env)
        except (OSError, paramiko.SSHException) as error:
            return CommandResult(tuple(argv), 127, str(error), time.monotonic() - started)
        with channel:
            try:
                pid, output = _read_pid(channel)
                if stdin is not None:
                    channel.sendall(stdin.encode())
                channel.shutdown_write()
                deadline = None if timeout is None else started + timeout
                finished = _read_all(channel, output, deadline)
            except (OSError, paramiko.SSHException) as error:
                return CommandResult(tuple(argv), 255, str(error), time.monotonic() - started)
            text = output.decode(errors="replace")
            if not finished:
                self.signal(pid, signals.SIGKILL)
                text += f"\n(timed out after {timeout:.0f} s)"
                return CommandResult(tuple(argv), -9, text, time.monotonic() - started)
            code = channel.recv_exit_status()
        return CommandResult(tuple(argv), code, text, time.monotonic() - started)

    def spawn(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]) -> RemoteProcess:
        channel = self._start(argv, cwd, env)
        try:
            pid, early = _read_pid(channel)
        except BaseException:
            channel.close()
            raise
        return RemoteProcess(self, channel, pid, bytes(early))

    def _start(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> paramiko.Channel:
        """A channel running ``argv``, which prints its pid on the first line, then execs.

        ``env`` (the release's secrets among it) never appears on a command line, where
        any user of the host could read it in ``ps``: it is sent first on stdin, kept
        for an instant in a private file, sourced and removed before the command runs.
        """
        transport = self._transport()  # connected first: it finds setpriv
        command = " ".join(shlex.quote(arg) for arg in argv)
        script = "echo $$; "
        preamble = b""
        if env is not None:
            preamble = "".join(
                f"{key}={shlex.quote(value)}\n" for key, value in env.items() if _NAME.match(key)
            ).encode()
            odd = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items() if not _NAME.match(k))
            # GNU head -c reads exactly that many bytes: the rest is the command's stdin.
            script += f'umask 077; f=$(mktemp) && head -c {len(preamble)} > "$f" || exit 127; '
            if odd:  # dash drops them from its environment: added after it
                command = f"env {odd} {command}"
            command = f'env -i /bin/sh -c {shlex.quote(_LOAD_ENV)} sh "$f" {command}'
        if self._setpriv is not None:
            # The kernel sends the death signal only if sshd's session process dies
            # after setpriv asked for it: the shell setpriv starts checks that its
            # parent is still that process (a closed connection could win the race).
            script += "p=$PPID; "
            command = (
                f"{shlex.quote(self._setpriv)} --pdeathsig KILL -- /bin/sh -c "
                f'{shlex.quote(_PARENT_CHECK)} sh "$p" "${{f:-}}" {command}'
            )
        script += f"umask {CHILD_UMASK:03o}; "
        if cwd is not None:
            script += f'cd -- {shlex.quote(cwd)} || {{ rm -f -- "${{f:-}}"; exit 127; }}; '
        channel = transport.open_session()
        channel.set_combine_stderr(True)
        channel.exec_command(script + "exec " + command)
        if preamble:
            channel.sendall(preamble)
        return channel

    def pid_alive(self, pid: int) -> bool:
        # /proc answers for processes of any user (kill -0 would not: EPERM); a
        # zombie is there too, yet serves nothing.
        script = (
            f"s=$(cat /proc/{int(pid)}/stat 2>/dev/null) || exit 1; "
            "s=${s##*) }; case $s in Z*) exit 1;; esac"
        )
        return _exec_on(self._transport(), script)[0] == 0

    def signal(self, pid: int, signum: int) -> bool:
        code, output = _exec_on(self._transport(), f"kill -s {int(signum)} {int(pid)}")
        if code != 0 and os.strerror(errno.EPERM) in output.decode(errors="replace"):
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(pid))
        return code == 0

    # -- the guard --------------------------------------------------------------------

    @contextlib.contextmanager
    def guard(self, path: str) -> Iterator[None]:
        # The shell opens the file (0600, like LocalHost), flock(1) locks that open
        # file, and cat keeps it open until its stdin ends: when we leave, or when
        # the connection dies with the deploy.
        script = (
            f"umask 077; exec 9<>{shlex.quote(path)} && flock -x 9 && echo locked && "
            "exec cat >/dev/null"
        )
        channel = self._transport().open_session()
        channel.set_combine_stderr(True)
        with channel:
            channel.exec_command(script)
            answer = _read_line(channel)
            if answer != b"locked\n":
                raise _os_error(answer.decode(errors="replace"), path)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, paramiko.SSHException):
                    channel.shutdown_write()
                    channel.status_event.wait(_GUARD_RELEASE_SECONDS)

    # -- reading ----------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return self._lstat(path) is not None

    def is_file(self, path: str) -> bool:
        found = self._lstat(path)
        return found is not None and stat.S_ISREG(found.st_mode or 0)

    def _lstat(self, path: str) -> paramiko.SFTPAttributes | None:
        with self._files() as files:
            try:
                return files.lstat(path)
            except FileNotFoundError:
                return None

    def read_text(self, path: str) -> str:
        with self._files() as files, files.open(path, "rb") as remote:
            return bytes(remote.read()).decode()

    def modified_at(self, path: str) -> float:
        with self._files() as files:
            return float(files.stat(path).st_mtime or 0)

    def listdir(self, path: str) -> list[str]:
        with self._files() as files:
            try:
                return sorted(files.listdir(path))
            except FileNotFoundError:
                return []

    def readlink(self, path: str) -> str | None:
        with self._files() as files:
            try:
                target = files.readlink(path)
            except OSError:
                return None
        return None if target is None else str(target)

    def tree_digest(self, path: str, *, tracked: bool = False) -> str:
        # The module's own source, run by the remote Python: the same definition.
        argv = [self.python, "-", path, *(["--tracked"] if tracked else [])]
        result = self.run(argv, stdin=inspect.getsource(digest), timeout=600)
        if not result.ok:
            raise _os_error(result.output, path)
        return result.output.strip()

    def byte_compile(self, path: str, previous: str | None) -> dict[str, int]:
        # The module's own source again, run by the Python the host's venvs are built with.
        argv = [self.python, "-", path, *([previous] if previous else [])]
        result = self.run(argv, stdin=inspect.getsource(bytecode), timeout=600)
        if not result.ok:
            raise _os_error(result.output, path)
        counts: dict[str, int] = json.loads(result.output.strip().splitlines()[-1])
        return counts

    # -- writing ----------------------------------------------------------------------

    def write_text(self, path: str, text: str, *, mode: int | None = None) -> None:
        mode = self.privacy.file_mode if mode is None else mode
        script = (
            f"{self._temporary_script(path, mode)}"
            f'mv -fT -- "$t" {shlex.quote(path)} && sync -- "$d"'
        )
        self._shell(script, text.encode(), path)

    def create_exclusive(self, path: str, text: str) -> bool:
        # ln fails when the name exists, and the name appears with the whole content
        # already behind it: no reader ever sees a half file.
        script = (
            f"{self._temporary_script(path, self.privacy.file_mode)}"
            f'if out=$(ln -- "$t" {shlex.quote(path)} 2>&1); then sync -- "$d"; exit 0; fi; '
            'case $out in *"File exists"*) exit 3;; esac; echo "$out"; exit 1'
        )
        code, output = _exec_on(self._transport(), script, text.encode())
        if code == 3:
            return False
        if code != 0:
            raise _os_error(output.decode(errors="replace"), path)
        return True

    def _temporary_script(self, path: str, mode: int) -> str:
        """Shell lines leaving ``$t``: stdin in a synced temporary file next to ``path``
        with its final mode and group, removed on exit unless renamed or linked."""
        directory, name = posixpath.split(path)
        return (
            f"umask 077; d={shlex.quote(directory or '.')}; "
            f't=$(mktemp "$d"/{shlex.quote(f".{name}.")}XXXXXXXX.tmp) || exit 1; '
            """trap 'rm -f -- "$t"' EXIT; """
            f'cat > "$t" && {self._own_script(_TEMPORARY, mode)} && sync -- "$t" || exit 1; '
        )

    def _own_script(self, target: str, mode: int) -> str:
        """Shell giving ``target`` (already quoted) ``mode`` and the host's group."""
        # Five octal digits: GNU chmod keeps a directory's setgid bit otherwise.
        chmod = f"chmod 0{mode:04o} -- {target}"
        if self.privacy.group:
            return f"chgrp -h -- {shlex.quote(self.privacy.group)} {target} && {chmod}"
        return chmod

    def append_text(self, path: str, text: str) -> None:
        argv = [self.python, "-c", _APPEND_SCRIPT, path, str(self.privacy.file_mode)]
        argv.append(self.privacy.group or "")
        result = self.run(argv, stdin=text, timeout=120)
        if not result.ok:
            raise _os_error(result.output, path)

    def set_mode(self, path: str, mode: int) -> None:
        if not self.privacy.group:
            with self._files() as files:
                files.chmod(path, mode)  # chmod(2) itself: the mode exactly
            return
        self._shell(self._own_script(shlex.quote(path), mode), path=path)

    def remove(self, path: str) -> None:
        self._shell(f"rm -rf -- {shlex.quote(path)}", path=path)

    def makedirs(self, path: str, *, mode: int | None = None) -> None:
        mode = self.privacy.dir_mode if mode is None else mode
        chain = []
        head = posixpath.normpath(path)
        while head not in ("/", ".", ""):
            chain.append(head)
            head = posixpath.dirname(head)
        own = self._own_script('"$p"', mode)
        script = (
            f"for p in {' '.join(shlex.quote(p) for p in reversed(chain))}; do "
            '[ -d "$p" ] && continue; '
            'mkdir -m 700 -- "$p" 2>/dev/null || [ -d "$p" ] || mkdir -- "$p" || exit 1; '
            f"{own} || exit 1; done"
        )
        self._shell(script, path=path)

    def switch_link(self, link: str, target: str) -> None:
        temporary = f"{link}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        script = (
            f"ln -s -- {shlex.quote(target)} {shlex.quote(temporary)} && "
            f"mv -fT -- {shlex.quote(temporary)} {shlex.quote(link)}"
        )
        self._shell(script, path=link)

    def extract_tar(self, data: bytes, dest: str) -> None:
        filtered = _data_filtered(data)
        # With the data filter's modes in the archive, umask 022 and no kept owner give
        # what tarfile gives: directories 0755, files as filtered, owned by the user.
        script = (
            f"umask 022; mkdir -p -- {shlex.quote(dest)} && "
            f"tar -x -f - -C {shlex.quote(dest)} --no-same-owner --no-same-permissions"
        )
        self._shell(script, filtered, dest)

    def make_temp_dir(self) -> str:
        return self._shell("mktemp -d -t django-cd-XXXXXXXXXX").decode().strip()

    def free_space(self, path: str) -> tuple[str, int]:
        # POSIX df: one header line, then "filesystem blocks used available ..." in KiB.
        script = (
            f"p={shlex.quote(path)}; "
            'while [ ! -e "$p" ] && [ "$p" != / ]; do p=$(dirname -- "$p"); done; '
            'printf "%s\\n" "$p"; df -P -k -- "$p"'
        )
        lines = self._shell(script, path=path).decode().splitlines()
        return lines[0], int(lines[-1].split()[3]) * 1024


class RemoteProcess:
    """A command started by ``SSHHost.spawn``, looking like ``subprocess.Popen``.

    Its output arrives on a real pipe (a thread copies the channel into it), so a
    reader selects on ``stdout.fileno()`` and ``os.read``s it as from a local child.
    """

    def __init__(self, host: SSHHost, channel: paramiko.Channel, pid: int, early: bytes) -> None:
        self.host = host
        self.pid = pid
        self.returncode: int | None = None
        self._channel = channel
        self.stdin = _ChannelInput(channel)
        read_end, write_end = os.pipe()
        self.stdout = os.fdopen(read_end, "rb", buffering=0)
        self._copier = threading.Thread(
            target=_copy_output, args=(channel, early, write_end), daemon=True
        )
        self._copier.start()

    def poll(self) -> int | None:
        if self.returncode is None and self._channel.exit_status_ready():
            self.returncode = self._channel.recv_exit_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._channel.status_event.wait(timeout):
            raise subprocess.TimeoutExpired(f"{self.host.name}: pid {self.pid}", timeout or 0)
        self._copier.join(timeout)
        code = self.poll()
        assert code is not None
        return code

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(OSError, paramiko.SSHException, PipelineError):
                self.host.signal(self.pid, signals.SIGKILL)


class _ChannelInput:
    """The ``stdin`` of a ``RemoteProcess``: writes go straight to the channel."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def write(self, data: bytes, /) -> int:
        if self._channel.closed or self._channel.eof_sent:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        self._channel.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self._channel.closed:
            self._channel.shutdown_write()


def _copy_output(channel: paramiko.Channel, early: bytes, fd: int) -> None:
    try:
        chunk = early
        while True:
            if chunk:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            chunk = channel.recv(65536)
            if not chunk:
                return
    except OSError:  # the reader closed its end; nobody wants the rest
        return
    finally:
        os.close(fd)


# -- channels ------------------------------------------------------------------------


def _exec(connection: Connection, script: str, stdin: bytes = b"") -> tuple[int, bytes]:
    assert connection.transport is not None
    return _exec_on(connection.transport, script, stdin)


def _exec_on(transport: paramiko.Transport, script: str, stdin: bytes = b"") -> tuple[int, bytes]:
    """Exit status and combined output of ``script`` run by the remote login shell."""
    with transport.open_session() as channel:
        channel.set_combine_stderr(True)
        channel.exec_command(script)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        output = bytearray()
        _read_all(channel, output, None)
        return channel.recv_exit_status(), bytes(output)


def _read_all(channel: paramiko.Channel, output: bytearray, deadline: float | None) -> bool:
    """Read into ``output`` until the end; False when ``deadline`` came first."""
    while True:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            channel.settimeout(remaining)
        try:
            chunk = channel.recv(65536)
        except TimeoutError:
            return False
        if not chunk:
            channel.settimeout(None)
            return True
        output += chunk


def _read_line(channel: paramiko.Channel) -> bytes:
    """The first line the channel sends (all of it, if it ends first), byte by byte:
    nothing after it is taken from the channel."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = channel.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _read_pid(channel: paramiko.Channel) -> tuple[int, bytearray]:
    """The pid our wrapper prints first; what came after it is the command's output."""
    line = _read_line(channel)
    try:
        return int(line), bytearray()
    except ValueError:
        # The login shell printed something first (a banner in .bashrc?): not our pid.
        raise OSError(
            errno.EPROTO, f"the remote shell did not start the command: {line!r}"
        ) from None


_REPORTED_ERRNOS = (
    errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY,
)  # fmt: skip


def _os_error(output: str, path: str | None) -> OSError:
    """The ``OSError`` a remote command's message describes, by its ``strerror`` text
    (as ``LocalHost`` would have raised it, so ``describe_os_error`` gives the advice)."""
    for code in _REPORTED_ERRNOS:
        if os.strerror(code) in output:
            return OSError(code, os.strerror(code), path)
    return OSError(errno.EIO, output.strip() or "the remote command failed", path)


# -- data filtering ------------------------------------------------------------------


def _data_filtered(data: bytes) -> bytes:
    """``data`` rewritten through tarfile's ``data`` filter: what ``extractall(...,
    filter="data")`` rejects raises the same ``tarfile.FilterError`` here, and what it
    accepts keeps the modes it would get (no setuid, no group or other write)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member in source:
            filtered = tarfile.data_filter(member, _FILTER_ROOT)
            if filtered is None:
                continue
            if filtered.mode is None or filtered.isdir():
                filtered = filtered.replace(mode=0o755, deep=False)
            filtered = filtered.replace(uid=0, gid=0, uname="", gname="", deep=False)
            content = source.extractfile(member) if member.isreg() else None
            target.addfile(filtered, content)
    return out.getvalue()


#: ``LocalHost.append_text`` for the remote Python: one write() on an O_APPEND file,
#: a line cut short ended first, a partial record taken back.
_APPEND_SCRIPT = """\
import contextlib, errno, grp, os, sys
path, mode, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = sys.stdin.buffer.read()
fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
try:
    if group:
        os.fchown(fd, -1, grp.getgrnam(group).gr_gid)
    os.fchmod(fd, mode)
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\\n":
        data = b"\\n" + data
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        os.fsync(fd)
    except OSError:
        if os.fstat(fd).st_size > size:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
        raise
finally:
    os.close(fd)
"""


__all__ = ["HostSpec", "RemoteProcess", "SSHHost"]
