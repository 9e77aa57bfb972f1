"""The instances of a template on a host: one record each, locks, and ports.

::

    <template root>/instances/<name>.json   the record: ref, port, database, times
    <template root>/instances/<name>.lock   the instance's lock (create, deploy, refresh, destroy)
    <template root>/instances/.lock         held while a name, a port and a slot are given out

A record is the one truth about an instance: the derived environment
(``testing.pr-123``) is rebuilt from it and the template, so ``manage.py status``,
``rollback`` and ``server`` work on an instance as on any environment.
"""

from __future__ import annotations

import json
import posixpath
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django_cd import conf
from django_cd.instances.config import InstanceError, Template
from django_cd.pipeline.host import Host
from django_cd.pipeline.lock import Lock


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Record:
    """What an instance is: its template, branch, port and database, and when it was made."""

    name: str
    template: str
    ref: str
    port: int | None
    database: str
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    created_by: str = ""
    # creating, ready, failed (the last deploy failed; the instance is kept to look at)
    status: str = "creating"
    copy: dict[str, object] = field(default_factory=dict)

    def age_seconds(self, at: datetime | None = None) -> float:
        since = datetime.fromisoformat(self.updated_at)
        return ((at or datetime.now(UTC)) - since).total_seconds()

    @classmethod
    def parse(cls, text: str) -> Record:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Registry:
    """The records and locks of one template's instances on ``host``."""

    def __init__(self, template: Template, host: Host, timeout: float | None = None) -> None:
        self.template = template
        self.host = host
        self.timeout = float(timeout or conf.get_config()["LOCK_TIMEOUT"])

    @property
    def path(self) -> str:
        return self.template.registry

    def record_path(self, name: str) -> str:
        return posixpath.join(self.path, f"{name}.json")

    def get(self, name: str) -> Record | None:
        path = self.record_path(name)
        if not self.host.exists(path):
            return None
        try:
            return Record.parse(self.host.read_text(path))
        except (ValueError, TypeError) as error:
            raise InstanceError(
                f"The record {path} cannot be read ({error}): fix or remove it."
            ) from None

    def require(self, name: str) -> Record:
        record = self.get(name)
        if record is None:
            known = ", ".join(r.name for r in self.records()) or "none exist"
            raise InstanceError(
                f"There is no instance {name!r} of {self.template.name!r} (instances: "
                f"{known}). Create it with manage.py instance create --env="
                f"{self.template.name} {name} --ref BRANCH."
            )
        return record

    def records(self) -> list[Record]:
        names = [n[: -len(".json")] for n in self.host.listdir(self.path) if n.endswith(".json")]
        return [r for r in map(self.get, sorted(names)) if r is not None]

    def save(self, record: Record) -> None:
        self.host.makedirs(self.path)
        self.host.write_text(self.record_path(record.name), json.dumps(asdict(record)) + "\n")

    def remove(self, name: str) -> None:
        self.host.remove(self.record_path(name))

    def lock(self, name: str, action: str, break_stale: bool = False) -> Lock:
        """The lock of instance ``name`` (not taken)."""
        self.host.makedirs(self.path)
        return Lock(
            self.host,
            posixpath.join(self.path, f"{name}.lock"),
            action=action,
            timeout=self.timeout,
            break_stale=break_stale,
        )

    def allocation_lock(self) -> Lock:
        """Held while a name, a port and a slot under ``max_instances`` are given out."""
        self.host.makedirs(self.path)
        return Lock(self.host, posixpath.join(self.path, ".lock"), action="allocate", timeout=60)

    # Ports --------------------------------------------------------------------------------

    def choose_port(self, requested: int | None) -> int | None:
        """A port of the template's range that no instance and no process uses."""
        ports = self.template.ports
        if not self.template.uses_port or ports is None:
            if requested is not None:
                raise InstanceError(
                    f"Instances of {self.template.name!r} serve on a socket, not a port: "
                    "leave out --port."
                )
            return None
        taken = ports_in_use(self.host)
        if requested is not None:
            if requested not in ports:
                raise InstanceError(
                    f"Port {requested} is outside the instances' range {ports.start}-"
                    f"{ports.stop - 1}: pick one inside it, or leave out --port."
                )
            if requested in taken:
                raise InstanceError(
                    f"Port {requested} is taken by {taken[requested]}: pick another, or "
                    "leave out --port to get a free one."
                )
            if not port_free(self.template.bind("x", requested)):
                raise InstanceError(
                    f"Port {requested} is in use by another process on this host: pick "
                    "another, or leave out --port to get a free one."
                )
            return requested
        for port in ports:
            if port not in taken and port_free(self.template.bind("x", port)):
                return port
        raise InstanceError(
            f"Every port of {self.template.name!r}'s range {ports.start}-{ports.stop - 1} is "
            "in use: destroy an instance (manage.py instance prune --older-than 7d) or "
            "widen 'ports'."
        )


def templates() -> Iterable[Template]:
    """Every valid template of ``DJANGO_CD``."""
    for env in conf.environments().values():
        if env.instances is not None:
            try:
                yield Template.of(env)
            except InstanceError:
                continue


def ports_in_use(host: Host) -> dict[int, str]:
    """Ports that instances of every template and configured environments listen on."""
    taken: dict[int, str] = {}
    for env in conf.environments().values():
        port = str(env.server.get("bind") or "").rpartition(":")[2]
        if port.isdigit():
            taken[int(port)] = f"environment {env.name!r}"
    for template in templates():
        for record in Registry(template, host).records():
            if record.port is not None:
                taken[record.port] = f"instance {template.name}.{record.name}"
    return taken


def port_free(bind: str) -> bool:
    """True when ``host:port`` can be listened on now."""
    address, _, port = bind.rpartition(":")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address.strip("[]"), int(port)))
        except OSError:
            return False
    return True
