"""Opening an SSH connection for a ``HostSpec``, and what to tell the operator when
it cannot be opened: every failure a ``PipelineError`` naming ``user@host:port`` and
the fix, never a secret (key paths and fingerprints, no key material).

The host key is checked like OpenSSH's ``StrictHostKeyChecking=yes`` against the
spec's ``known_hosts``; ``accept_new_host_key`` is its ``accept-new``. Nothing is
read from ``~/.ssh/config``: the spec is the whole truth.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import socket
from typing import Any

import paramiko
from fabric import Config, Connection

from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.hostspec import HostSpec


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("unknown host key")
        self.key = key


class _NoHandshake(paramiko.SSHException):
    """The TCP connection was accepted, but no SSH handshake finished in time."""


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """OpenSSH's ``StrictHostKeyChecking=yes``: a host not in known_hosts is refused."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        raise _UnknownHostKey(key)


def open_connection(spec: HostSpec) -> Connection:
    """A connected Fabric ``Connection`` for ``spec``, or a ``PipelineError``."""
    timeout = max(1, round(spec.connect_timeout))
    connect_kwargs: dict[str, Any] = {
        "look_for_keys": False,
        "allow_agent": spec.key_file is None,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
    }
    if spec.key_file is not None:
        connect_kwargs["key_filename"] = os.path.expanduser(spec.key_file)
    # An empty SSH config: the host spec is the whole truth, not ~/.ssh/config.
    config = Config(ssh_config=paramiko.SSHConfig(), lazy=True)
    connection = Connection(
        spec.hostname,
        user=spec.user,
        port=spec.port,
        config=config,
        connect_timeout=timeout,
        connect_kwargs=connect_kwargs,
    )
    known_hosts = os.path.expanduser(spec.known_hosts)
    client = connection.client
    if spec.accept_new_host_key:
        # Recorded in known_hosts (paramiko saves it there): next time it is checked.
        _touch_private(known_hosts)
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        client.set_missing_host_key_policy(_RefuseUnknown())
    if os.path.exists(known_hosts):
        client.load_host_keys(known_hosts)
    try:
        connection.open()
    except BaseException as error:
        # paramiko may report a banner that never came as "No existing session"; the
        # transport kept what really happened.
        transport = connection.client.get_transport()
        cause = getattr(transport, "saved_exception", None)
        connection.close()
        if isinstance(error, paramiko.SSHException) and isinstance(cause, Exception):
            error = cause
        elif isinstance(error, paramiko.SSHException) and not (
            transport is None or transport.initial_kex_done
        ):
            error = _NoHandshake()  # the connect timeout ended the handshake
        problem = _connect_problem(spec, error)
        if problem is None:
            raise
        raise PipelineError(problem) from None
    sock = connection.transport.sock
    if isinstance(sock, socket.socket):
        # Small request, small answer: Nagle's algorithm against the server's delayed
        # ACK would add 40 ms to every channel opened.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _connect_problem(spec: HostSpec, error: BaseException) -> str | None:
    """What went wrong connecting to ``spec`` and what to do; None: not ours to explain."""
    host = spec.address
    known_hosts = spec.known_hosts
    scan = f"ssh-keyscan -p {spec.port} {spec.hostname} >> {known_hosts}"
    if isinstance(error, paramiko.BadHostKeyException):
        return (
            f"The host key of {host} does not match the one in {known_hosts} "
            f"(it offered {_fingerprint(error.key)}, {_fingerprint(error.expected_key)} "
            "was recorded): someone may be intercepting the connection, or the host was "
            "reinstalled. Check the new key with the host's administrator, then remove the "
            f"old one (ssh-keygen -R '[{spec.hostname}]:{spec.port}' -f {known_hosts}) and "
            "connect again."
        )
    if isinstance(error, _UnknownHostKey):
        return (
            f"The host key of {host} ({_fingerprint(error.key)}) is not in {known_hosts}, "
            "so the host cannot be trusted: check that fingerprint with the host's "
            f"administrator, then add the key ({scan}), or set 'accept_new_host_key': "
            "true for this host to record it at the first connection."
        )
    if isinstance(error, paramiko.PasswordRequiredException):
        return (
            f"The key {spec.key_file} for {host} is protected by a passphrase: load it into "
            f"the SSH agent (ssh-add {spec.key_file}) and leave 'key_file' out."
        )
    if isinstance(error, paramiko.AuthenticationException):
        how = (
            f"the key {spec.key_file}"
            if spec.key_file is not None
            else "the keys of the SSH agent (SSH_AUTH_SOCK)"
        )
        return (
            f"Authentication to {host} failed with {how}: add the matching public key to "
            f"~{spec.user}/.ssh/authorized_keys on the host, or set 'key_file' to the key "
            "the host accepts."
        )
    if isinstance(error, FileNotFoundError) and spec.key_file is not None:
        return (
            f"The key file {spec.key_file} for {host} does not exist: create it "
            "(ssh-keygen -t ed25519) or correct 'key_file'."
        )
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        codes = {getattr(e, "errno", None) for e in error.errors.values()}
        if codes == {errno.ECONNREFUSED}:
            return (
                f"Cannot connect to {host}: connection refused. Check that sshd runs on the "
                "host and listens on that port, and that no firewall blocks it."
            )
        return (
            f"Cannot connect to {host}: the host is unreachable (no route to it). Check the "
            "host name and the network between here and there."
        )
    if isinstance(error, TimeoutError | socket.timeout):
        return (
            f"Cannot connect to {host}: no answer within {spec.connect_timeout:g} s. Check "
            "the host name, that the host is up and that no firewall drops the connection "
            "(or raise 'connect_timeout')."
        )
    if isinstance(error, _NoHandshake) or (
        isinstance(error, paramiko.SSHException) and "banner" in str(error)
    ):
        return (
            f"Cannot connect to {host}: something listens on port {spec.port} but did not "
            f"answer as an SSH server within {spec.connect_timeout:g} s. Check the port, and "
            "that sshd is not overloaded (MaxStartups)."
        )
    if isinstance(error, OSError | paramiko.SSHException):
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        return (
            f"Cannot connect to {host}: {reason}. Check the host name and that sshd answers "
            f"on port {spec.port}."
        )
    return None


def _fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's way of showing a key: ``ssh-ed25519 SHA256:...``."""
    raw = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(raw).decode().rstrip('=')}"


def _touch_private(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


__all__ = ["open_connection"]
