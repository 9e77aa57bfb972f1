"""The hosts of an environment, as a deploy or rollback works on them.

One ``Target`` per host (``fleet_targets``), and one ``Member`` per target in a
deploy: what the deploy did on that host, so a failure undoes exactly that.
``each`` runs a phase on several hosts at once; one host is the special case
of a fleet of one, run in the calling thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django_cd import conf
from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.host import Host
from django_cd.pipeline.hostspec import HostSpec, HostSpecError
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.target import Target

if TYPE_CHECKING:
    from django_cd.pipeline.journal import Journal
    from django_cd.pipeline.release import Release
    from django_cd.pipeline.steps import StepRunner

M = TypeVar("M")
#: How long ``hosts_command`` may take to list the hosts.
HOSTS_COMMAND_SECONDS = 60.0


@dataclass(eq=False)
class Member:
    """One host's part of a deploy: its target and what the deploy did there."""

    target: Target
    #: The label of its steps: the host's name in a fleet, "" on an only host.
    label: str = ""
    runner: StepRunner | None = None
    release: Release | None = None
    previous: str | None = None
    journal: Journal | None = None
    venv: str | None = None
    static: dict[str, Any] | None = None
    switched: bool = False
    #: Whether the uploaded archive holds .pyc files (committed ones) for clean_pyc.
    archive_has_pyc: bool = True
    archive_size: int = 0

    @property
    def host(self) -> Host:
        return self.target.host

    @property
    def layout(self) -> Layout:
        return self.target.layout

    @property
    def steps(self) -> StepRunner:
        assert self.runner is not None
        return self.runner


def host_entries(env: conf.Environment) -> list[str | Mapping[str, Any]]:
    """The environment's hosts as listed now: ``hosts``, or the lines of ``hosts_file``
    or of ``hosts_command``'s output, read again at each command (a fleet that grows or
    shrinks in the cloud is deployed as it is)."""
    if env.hosts_file:
        path = os.path.expanduser(env.hosts_file)
        try:
            with open(path, encoding="utf-8") as listing:
                text = listing.read()
        except OSError as error:
            raise PipelineError(
                f"Environment {env.name!r}: the hosts file {env.hosts_file} cannot be read "
                f"({error.strerror}). Create it with one 'user@host[:port]' per line."
            ) from None
        return _entries(text, f"the hosts file {env.hosts_file}", env)
    if env.hosts_command:
        try:
            listed = subprocess.run(
                env.hosts_command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=HOSTS_COMMAND_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PipelineError(
                f"Environment {env.name!r}: hosts_command gave no list within "
                f"{HOSTS_COMMAND_SECONDS:.0f} s: {env.hosts_command}"
            ) from None
        if listed.returncode != 0:
            last = (listed.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise PipelineError(
                f"Environment {env.name!r}: hosts_command failed (exit {listed.returncode}): "
                f"{last}. Nothing was changed."
            )
        return _entries(listed.stdout, "hosts_command's output", env)
    return list(env.hosts)


def _entries(text: str, source: str, env: conf.Environment) -> list[str | Mapping[str, Any]]:
    """One host a line: ``user@host[:port]``, or a JSON object of host options (what an
    inventory script prints); blank lines and ``#`` comments are left out."""
    entries: list[str | Mapping[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("{"):
            entries.append(line)
            continue
        try:
            entry = json.loads(line)
        except ValueError as error:
            raise PipelineError(
                f"Environment {env.name!r}: line {number} of {source} is not a JSON object "
                f"of host options ({error.args[0]}). Nothing was changed."
            ) from None
        if not isinstance(entry, dict):
            raise PipelineError(
                f"Environment {env.name!r}: line {number} of {source} is not a JSON object "
                "of host options. Nothing was changed."
            )
        entries.append(entry)
    if not entries:
        raise PipelineError(
            f"Environment {env.name!r}: {source} lists no host. Nothing was changed."
        )
    return entries


def host_specs(env: conf.Environment) -> list[HostSpec]:
    """The SSH hosts of ``env``, the migration host first; none for a local environment."""
    entries = host_entries(env)
    if all(entry == "local" for entry in entries):
        return []
    specs: list[HostSpec] = []
    for entry in entries:
        try:
            specs.append(HostSpec.parse(entry, env.host_defaults))
        except HostSpecError as error:  # from a file or a command; settings are checked
            raise PipelineError(
                f"Environment {env.name!r}: {error} Nothing was changed."
            ) from None
    if env.migration_host is not None:
        first = [spec for spec in specs if spec.address == env.migration_host]
        if not first:
            raise PipelineError(
                f"Environment {env.name!r}: migration_host {env.migration_host} is not among "
                f"its hosts ({', '.join(s.address for s in specs)}). Nothing was changed."
            )
        specs = first + [spec for spec in specs if spec is not first[0]]
    return specs


def host_environment(env: conf.Environment, spec: HostSpec) -> conf.Environment:
    """``env`` as one host of it sees it: the host's root, its own server options, its
    own check URL, and only the roles it plays."""
    roles = spec.roles
    web = roles is None or "web" in roles
    server = conf.Server(env.server.type, {**env.server.options, **spec.server})
    if not web:
        server = conf.Server("none")
    processes = tuple(p for p in env.processes if roles is None or p.name in roles)
    return dataclasses.replace(
        env,
        root=spec.root or env.root,
        server=server,
        urls=(_check_url(env, spec, server),) if web and server.type != "none" else (),
        processes=processes,
    )


def _check_url(env: conf.Environment, spec: HostSpec, server: conf.Server) -> str:
    """Where the deploy checks this host's own app server (never the load balancer: it
    would answer from any host)."""
    if spec.url:
        return spec.url
    bind = str(server.get("bind") or "")
    address, _, port = bind.rpartition(":")
    if not port.isdigit():
        raise PipelineError(
            f"Environment {env.name!r}: host {spec.address} needs a 'url' where its app "
            f"server answers (its bind {bind!r} names no TCP port)."
        )
    if address in ("", "0.0.0.0", "[::]", "::"):
        address = f"[{spec.hostname}]" if ":" in spec.hostname else spec.hostname
    elif address.startswith("127.") or address in ("localhost", "[::1]"):
        if not (spec.hostname.startswith("127.") or spec.hostname in ("localhost", "::1")):
            raise PipelineError(
                f"Environment {env.name!r}: host {spec.address} binds its app server to "
                f"{bind}, which this machine cannot reach to check it. Give the host a "
                "'url' (e.g. its nginx: 'http://web1.internal/'), or bind 0.0.0.0."
            )
        address = f"[{spec.hostname}]" if ":" in spec.hostname else spec.hostname
    return f"http://{address}:{port}/"


def fleet_targets(env: conf.Environment) -> list[Target]:
    """A target per host of ``env``, the migration host (which holds the lock and the
    environment's history) first: this machine, or each SSH host listed."""
    specs = host_specs(env)
    if not specs:
        return [Target(env)]
    from django_cd.pipeline.ssh import SSHHost  # Fabric: the "ssh" extra

    return [Target(host_environment(env, spec), SSHHost(spec)) for spec in specs]


def primary_target(env: conf.Environment) -> Target:
    """The host that holds the environment's lock and history (the migration host)."""
    return fleet_targets(env)[0]


def close(targets: Sequence[Target]) -> None:
    """Close every host's connection."""
    for target in targets:
        target.host.close()


def each(members: Sequence[M], action: Callable[[M], object]) -> None:
    """``action`` on every member at once; the first member's error (in their order) is
    raised once all have ended, so no host is left mid-step when the undo begins."""
    if len(members) <= 1:
        for member in members:
            action(member)
        return
    with ThreadPoolExecutor(max_workers=len(members)) as pool:
        futures = [pool.submit(action, member) for member in members]
        interrupted = False
        while True:
            try:
                wait(futures)
                break
            except KeyboardInterrupt:  # the steps end by their own timeouts
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error
