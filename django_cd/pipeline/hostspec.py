"""Which machines an environment deploys to: ``HostSpec``, parsed from settings.

An entry is ``"user@host[:port]"`` (an IPv6 address in brackets:
``"deploy@[2001:db8::5]:2222"``), or a mapping with that string under
``"host"`` and any of the options below. Parsing needs no SSH library, so
settings are checked (``django_cd.conf``) without Fabric installed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: The options of a mapping entry besides ``host``.
SPEC_OPTIONS = (
    "root",
    "key_file",
    "known_hosts",
    "accept_new_host_key",
    "python",
    "connect_timeout",
    "server",
    "url",
    "roles",
)
#: What a host's ``server`` may change of the environment's server (not its type).
SERVER_OVERRIDES = ("bind", "workers", "args", "timeout", "fifo")

_ADDRESS = re.compile(
    r"""^(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@
        (?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<hostname>[A-Za-z0-9._-]+))
        (?::(?P<port>[0-9]{1,5}))?$""",
    re.VERBOSE,
)


class HostSpecError(ValueError):
    """An entry of an environment's ``hosts`` that does not name a host usably."""


@dataclass(frozen=True)
class HostSpec:
    """One SSH host of an environment, and how to reach it."""

    user: str
    hostname: str
    port: int = 22
    #: The deploy root on that host; None: the environment's own root.
    root: str | None = None
    #: The private key to log in with; None: the keys of the running SSH agent.
    key_file: str | None = None
    #: OpenSSH's known_hosts file the host key is checked against.
    known_hosts: str = "~/.ssh/known_hosts"
    #: Trust and record the key of a host not in ``known_hosts`` (OpenSSH's
    #: ``StrictHostKeyChecking=accept-new``); a key that changed is refused regardless.
    accept_new_host_key: bool = False
    #: The Python that builds release virtualenvs on that host.
    python: str = "python3"
    #: Seconds to wait for the TCP connection, the SSH banner and authentication.
    connect_timeout: float = 10.0
    #: The host's own app server options over the environment's (``bind``, ``workers``).
    server: dict[str, Any] = field(default_factory=dict)
    #: Where the deploy checks this host's app server; None: its ``bind``, reached at
    #: ``hostname`` when the server binds every address.
    url: str | None = None
    #: What the host runs: ``web`` (the app server) and role process names; None: all.
    roles: tuple[str, ...] | None = None

    @property
    def address(self) -> str:
        """``user@host:port``, as messages, locks and history name the host."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.user}@{host}:{self.port}"

    @classmethod
    def parse(
        cls, entry: str | Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> HostSpec:
        """The spec of one ``hosts`` entry, over the environment's ``host_defaults``;
        ``HostSpecError`` says what is wrong."""
        if defaults:
            own = {"host": entry} if isinstance(entry, str) else entry
            if isinstance(own, Mapping):
                entry = {**defaults, **own}
        if isinstance(entry, str):
            return cls(**_parse_address(entry))
        if not isinstance(entry, Mapping):
            raise HostSpecError(
                f"A host is a 'user@host[:port]' string or a mapping with 'host', "
                f"not {type(entry).__name__}."
            )
        if "host" not in entry:
            raise HostSpecError("A host mapping needs 'host': 'user@host[:port]'.")
        unknown = sorted(set(entry) - {"host", *SPEC_OPTIONS})
        if unknown:
            raise HostSpecError(
                f"Unknown key(s) {', '.join(map(repr, unknown))} for host {entry['host']!r}; "
                f"the keys are host, {', '.join(SPEC_OPTIONS)}."
            )
        if not isinstance(entry["host"], str):
            raise HostSpecError("A host's 'host' is a 'user@host[:port]' string.")
        values: dict[str, Any] = _parse_address(entry["host"])
        types = {field.name: field.type for field in fields(cls)}
        for option in SPEC_OPTIONS:
            if option in entry:
                values[option] = _checked(entry["host"], option, entry[option], types[option])
        return cls(**values)


def _parse_address(text: str) -> dict[str, Any]:
    match = _ADDRESS.match(text.strip())
    if match is None:
        raise HostSpecError(
            f"{text!r} is not a host: write 'user@host' or 'user@host:port' "
            "(an IPv6 address in brackets: 'user@[::1]:22')."
        )
    port = int(match["port"] or 22)
    if not 0 < port < 65536:
        raise HostSpecError(f"{text!r}: the port must be between 1 and 65535.")
    return {"user": match["user"], "hostname": match["ipv6"] or match["hostname"], "port": port}


def _checked(host: str, option: str, value: Any, annotation: Any) -> Any:
    """``value`` if it fits ``option``; a ``HostSpecError`` naming the host if not."""
    text = str(annotation)
    if text == "bool":
        ok = isinstance(value, bool)
        expected = "true or false"
    elif text == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        expected = "a number of seconds above 0"
    elif option in ("root", "known_hosts", "key_file"):
        ok = isinstance(value, str) and value.startswith(("/", "~"))
        expected = "an absolute path (or one starting with ~)"
    else:
        ok = isinstance(value, str) and bool(value)
        expected = "a non-empty string"
    if value is None and "None" in text:
        return None
    if option == "server":
        return _server(host, value)
    if option == "url":
        ok = isinstance(value, str) and value.startswith(("http://", "https://"))
        expected = "an http(s) URL"
    if option == "roles":
        ok = isinstance(value, list | tuple) and all(isinstance(r, str) and r for r in value)
        expected = "a list of roles ('web' and role process names)"
        value = tuple(value) if ok else value
    if not ok:
        raise HostSpecError(f"Host {host!r}: {option!r} must be {expected}, not {value!r}.")
    return value


def _server(host: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise HostSpecError(f"Host {host!r}: 'server' must be a dict of server options.")
    unknown = sorted(set(value) - set(SERVER_OVERRIDES))
    if unknown:
        raise HostSpecError(
            f"Host {host!r}: the server option(s) {', '.join(map(repr, unknown))} cannot be "
            f"set per host; a host may set {', '.join(SERVER_OVERRIDES)}."
        )
    return dict(value)


__all__ = ["SERVER_OVERRIDES", "SPEC_OPTIONS", "HostSpec", "HostSpecError"]
