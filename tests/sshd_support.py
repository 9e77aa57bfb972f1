"""Real OpenSSH servers as test hosts: Debian's ``/usr/sbin/sshd`` on a loopback port,
with host and client keys generated for the test (``ssh-keygen``, ed25519).

``SSHServer`` starts one; the ``sshd`` fixture keeps one per test session (per
pytest-xdist worker) and ``ssh_spec`` gives each test a ``HostSpec`` for it with
a deploy root of its own. The server logs in the user running the tests; its
files are the local files, so a test can check what an ``SSHHost`` did with
``pathlib`` as well.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_cd.pipeline.hostspec import HostSpec
from tests.pipeline_support import free_port

SSHD = "/usr/sbin/sshd"
START_SECONDS = 10.0


def keygen(path: Path, comment: str = "django-cd-test") -> Path:
    """A new ed25519 key pair at ``path`` (private) and ``path``.pub."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


class SSHServer:
    """One sshd on 127.0.0.1, trusting one client key; stopped by ``stop()``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(directory / "ssh_host_ed25519_key", "test-host")
        self.client_key = keygen(directory / "id_ed25519")
        self.authorized_keys = directory / "authorized_keys"
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.known_hosts = directory / "known_hosts"
        self.user = getpass.getuser()
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = directory / "sshd.log"

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        for _ in range(5):  # another worker may take the free port first
            self.port = free_port()
            config = self._write_config()
            with self.log.open("wb") as log:
                self.process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log
                )
            if self._wait_until_listening():
                self.known_hosts.write_text(self.known_hosts_line(self.host_key))
                return
            self.stop()
        raise RuntimeError(f"sshd did not start: {self.log.read_text()}")

    def known_hosts_line(self, key: Path) -> str:
        """``key``'s public half as known_hosts records it for this server."""
        kind, blob = Path(f"{key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    def spec(self, root: Path | None = None, **options: object) -> HostSpec:
        """A spec that logs in with the client key and knows the host key."""
        values: dict[str, object] = {
            "key_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "connect_timeout": 5.0,
        }
        values.update(options)
        return HostSpec(
            user=self.user,
            hostname="127.0.0.1",
            port=self.port,
            root=None if root is None else str(root),
            **values,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _write_config(self) -> Path:
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "ListenAddress 127.0.0.1",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    "UsePAM no",
                    # The test's temp dirs are not owned and moded as sshd wants ~/.ssh.
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "Subsystem sftp internal-sftp",
                    # A deploy's guard, agents and commands share one connection.
                    "MaxSessions 64",
                    "MaxStartups 64:30:128",
                    "LogLevel ERROR",
                    # bash sources ~/.bashrc for commands sshd starts unless SHLVL says
                    # it is nested; this machine's runs pyenv init (0.3 s a command),
                    # which is this machine's, not what a deploy user's shell costs.
                    "SetEnv SHLVL=1",
                    "",
                ]
            )
        )
        return config

    def _wait_until_listening(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.settimeout(1)
                    if sock.recv(4).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A running sshd for the session (skipped where OpenSSH's server is missing:
    ``make test`` installs it through scripts/ensure-services.sh)."""
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"{SSHD} is missing: run scripts/ensure-services.sh")
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ssh_spec(sshd: SSHServer, tmp_path: Path) -> HostSpec:
    """A spec for the session's sshd, with this test's own deploy root."""
    root = tmp_path / "ssh-root"
    root.mkdir()
    return sshd.spec(root)
