"""Opening an SSH host: host specs from settings, and what an operator reads when the
host cannot be reached, refuses the key, or shows a host key that is not the known one."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.hostspec import HostSpec, HostSpecError
from django_cd.pipeline.ssh import SSHHost
from tests.pipeline_support import free_port
from tests.sshd_support import SSHServer, keygen, sshd  # noqa: F401 (fixture)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("deploy@web1", HostSpec("deploy", "web1")),
        ("deploy@10.0.0.5:2222", HostSpec("deploy", "10.0.0.5", 2222)),
        ("deploy@[2001:db8::5]:2200", HostSpec("deploy", "2001:db8::5", 2200)),
        (
            {"host": "www-data@web2.example.com", "root": "/srv/site", "python": "python3.12",
             "key_file": "~/.ssh/deploy", "accept_new_host_key": True, "connect_timeout": 3},
            HostSpec("www-data", "web2.example.com", root="/srv/site", python="python3.12",
                     key_file="~/.ssh/deploy", accept_new_host_key=True, connect_timeout=3),
        ),
    ],
)  # fmt: skip
def test_host_entries_parse(entry: str | dict[str, object], expected: HostSpec) -> None:
    assert HostSpec.parse(entry) == expected


def test_an_address_names_user_host_and_port() -> None:
    assert HostSpec.parse("deploy@web1").address == "deploy@web1:22"
    assert HostSpec.parse("deploy@[::1]:2222").address == "deploy@[::1]:2222"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("web1", "'web1' is not a host: write 'user@host' or 'user@host:port'"),
        ("deploy@web1:99999", "'deploy@web1:99999': the port must be between 1 and 65535."),
        ({"root": "/srv"}, "A host mapping needs 'host': 'user@host[:port]'."),
        ({"host": "d@w", "keyfile": "x"}, "Unknown key(s) 'keyfile' for host 'd@w'; the keys"),
        ({"host": "d@w", "root": "srv"}, "Host 'd@w': 'root' must be an absolute path"),
        ({"host": "d@w", "accept_new_host_key": "yes"}, "must be true or false, not 'yes'."),
        ({"host": "d@w", "connect_timeout": 0}, "must be a number of seconds above 0"),
        (42, "A host is a 'user@host[:port]' string or a mapping with 'host', not int."),
    ],
)
def test_bad_host_entries_say_what_to_write(entry: object, message: str) -> None:
    with pytest.raises(HostSpecError) as raised:
        HostSpec.parse(entry)  # type: ignore[arg-type]
    assert message in str(raised.value)


def connect_error(spec: HostSpec) -> str:
    host = SSHHost(spec)
    with pytest.raises(PipelineError) as raised:
        host.connect()
    return str(raised.value)


def test_a_closed_port_is_named_with_the_fix(sshd: SSHServer) -> None:  # noqa: F811
    port = free_port()
    spec = dataclasses.replace(sshd.spec(), port=port, connect_timeout=2)
    message = connect_error(spec)
    assert message == (
        f"Cannot connect to {sshd.user}@127.0.0.1:{port}: connection refused. Check that sshd "
        "runs on the host and listens on that port, and that no firewall blocks it."
    )


def test_a_port_that_never_answers_times_out_quickly(sshd: SSHServer) -> None:  # noqa: F811
    held: list[socket.socket] = []
    with socket.socket() as silent:  # accepts connections and says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        accepting = threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True)
        accepting.start()
        spec = dataclasses.replace(sshd.spec(), port=port, connect_timeout=1)
        started = time.monotonic()
        try:
            message = connect_error(spec)
        finally:
            accepting.join(5)
            for connection in held:
                connection.close()
    assert time.monotonic() - started < 5
    assert message == (
        f"Cannot connect to {sshd.user}@127.0.0.1:{port}: something listens on port {port} "
        "but did not answer as an SSH server within 1 s. Check the port, and that sshd is not "
        "overloaded (MaxStartups)."
    )


def test_a_wrong_key_is_named_with_the_fix(sshd: SSHServer, tmp_path: Path) -> None:  # noqa: F811
    other = keygen(tmp_path / "other_key")
    message = connect_error(dataclasses.replace(sshd.spec(), key_file=str(other)))
    assert message == (
        f"Authentication to {sshd.user}@127.0.0.1:{sshd.port} failed with the key {other}: "
        f"add the matching public key to ~{sshd.user}/.ssh/authorized_keys on the host, or set "
        "'key_file' to the key the host accepts."
    )
    assert "PRIVATE KEY" not in message and other.read_text() not in message


def test_a_missing_or_locked_key_file_says_what_to_do(
    sshd: SSHServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no_such_key"
    message = connect_error(dataclasses.replace(sshd.spec(), key_file=str(missing)))
    assert message == (
        f"The key file {missing} for {sshd.user}@127.0.0.1:{sshd.port} does not exist: "
        "create it (ssh-keygen -t ed25519) or correct 'key_file'."
    )
    locked = tmp_path / "locked_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "a secret phrase", "-f", str(locked)],
        check=True,
    )
    message = connect_error(dataclasses.replace(sshd.spec(), key_file=str(locked)))
    assert message == (
        f"The key {locked} for {sshd.user}@127.0.0.1:{sshd.port} is protected by a "
        f"passphrase: load it into the SSH agent (ssh-add {locked}) and leave 'key_file' out."
    )


def test_a_changed_host_key_is_refused(sshd: SSHServer, tmp_path: Path) -> None:  # noqa: F811
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line(keygen(tmp_path / "impostor")))
    message = connect_error(dataclasses.replace(sshd.spec(), known_hosts=str(known_hosts)))
    assert message.startswith(
        f"The host key of {sshd.user}@127.0.0.1:{sshd.port} does not match the one in "
        f"{known_hosts} (it offered ssh-ed25519 SHA256:"
    )
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {known_hosts}" in message


def test_an_unknown_host_key_is_refused_by_default(sshd: SSHServer, tmp_path: Path) -> None:  # noqa: F811
    known_hosts = tmp_path / "known_hosts"
    message = connect_error(dataclasses.replace(sshd.spec(), known_hosts=str(known_hosts)))
    assert message.startswith(
        f"The host key of {sshd.user}@127.0.0.1:{sshd.port} (ssh-ed25519 SHA256:"
    )
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {known_hosts}" in message
    assert "'accept_new_host_key': true" in message
    assert not known_hosts.exists()  # nothing recorded


def test_accept_new_records_the_key_then_checks_it(sshd: SSHServer, tmp_path: Path) -> None:  # noqa: F811
    known_hosts = tmp_path / "ssh" / "known_hosts"
    spec = dataclasses.replace(sshd.spec(), known_hosts=str(known_hosts), accept_new_host_key=True)
    with SSHHost(spec) as host:
        assert host.run(["true"]).ok
    blob = Path(f"{sshd.host_key}.pub").read_text().split()[1]
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 {blob}" in known_hosts.read_text()
    assert known_hosts.stat().st_mode & 0o777 == 0o600
    # Recorded: a different key now is a mismatch, even with accept_new_host_key.
    known_hosts.write_text(sshd.known_hosts_line(keygen(tmp_path / "impostor")))
    assert connect_error(spec).startswith("The host key of ")


def test_one_connection_serves_every_call(sshd: SSHServer, tmp_path: Path) -> None:  # noqa: F811
    with SSHHost(sshd.spec(tmp_path)) as host:
        transport = host._transport()
        host.write_text(str(tmp_path / "f"), "x")
        assert host.read_text(str(tmp_path / "f")) == "x"
        assert host.run(["true"]).ok
        assert host._transport() is transport
    assert not transport.is_active()
