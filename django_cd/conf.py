"""The one accessor for django-cd's settings: the ``DJANGO_CD`` dict.

Everything in django-cd reads its options through :func:`get_config` and
:func:`get_environment`; nothing else looks at ``django.conf.settings`` for
them. Values are validated by :func:`validate` (which the system checks in
:mod:`django_cd.checks` report) and cached until a setting changes, so
``override_settings`` works in tests.
"""

from __future__ import annotations

import grp
import re
import shlex
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

#: Top-level keys of ``DJANGO_CD`` and their defaults (docs/settings.md).
DEFAULTS: dict[str, Any] = {
    # name -> environment definition; see ENVIRONMENT_DEFAULTS.
    "ENVIRONMENTS": {},
    # Feature flags declared in code: name -> {description, owner, kind, expires}.
    "FLAGS": {},
    # Releases kept on each host; the current and the previous are never pruned.
    "KEEP_RELEASES": 5,
    # Test pipelines that ``manage.py test --pipeline=...`` knows.
    "PIPELINES": ["unit", "functional", "smoke", "slow"],
    # The pipeline of a test that has no @pipeline(...) of its own.
    "DEFAULT_PIPELINE": "unit",
    # Where test runs record their outcome, relative to the repository root.
    "RESULTS_DIR": ".cd/results",
    # Apps whose migrations django-cd manages, beyond those under BASE_DIR.
    "FIRST_PARTY_APPS": [],
    # The git repository deploys are made from; None means "find it from BASE_DIR".
    "REPOSITORY": None,
    # Seconds after which a deploy lock counts as stale even if its holder may live.
    "LOCK_TIMEOUT": 3600,
    "LOCK_EXPIRY": 60,
    # Backups of failed or killed deploys kept for inspection, newest first.
    "KEEP_FAILED_BACKUPS": 2,
    # Environment variables naming who runs a CI job, for the ``deployers`` gate.
    "CI_IDENTITY_VARIABLES": ["BUILD_USER_ID", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"],
    # Sentry releases, deploy markers and failure events (docs/monitoring.md); None: off.
    "SENTRY": None,
    # StatsD metrics of each deploy and rollback (docs/monitoring.md); None: off.
    "STATSD": None,
}

#: Fields of one environment and their defaults. ``None`` marks a required field.
ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "settings": None,
    "root": None,
    "hosts": ["local"],
    # Issue 14: SSH hosts listed elsewhere, read again at each deploy (docs/hosts.md):
    # a file of host entries, one per line, or a command that prints them.
    "hosts_file": None,
    "hosts_command": None,
    # Options every SSH host entry gets unless it sets its own (key_file, python, ...).
    "host_defaults": {},
    # The host (its user@host[:port]) that backs up and migrates; None: the first.
    "migration_host": None,
    "urls": [],
    "server": {"type": "none"},
    "strategy": "parallel",
    # How rolling and canary deploys switch the fleet (ROLLOUT_DEFAULTS).
    "rollout": {},
    "backup": "auto",
    # pg_dump's compression level for the deploy's backups (0-9); None: pg_dump's own.
    "backup_compression": None,
    "manage": "manage.py",
    "requirements": "requirements.txt",
    "deploy_window": None,
    "deployers": [],
    "required_pipelines": [],
    "promote_from": None,
    "smoke_checks": [],
    "notifications": [],
    # Whether ``deploy --allow-dirty`` may deploy from a checkout with local changes.
    "allow_dirty": True,
    # The one group (besides the deploying user) that may read the deploy root.
    "group": None,
    # Variables of the deployer's environment a release's processes keep, beyond
    # PATH, HOME, LANG and the like (names, or patterns such as "SSL_*").
    "inherit_env": [],
    # The project's own deploy steps, and default steps replaced or skipped (docs/deploy.md).
    "steps": [],
    # Issue 15: makes the environment a template of testing instances (django_cd.instances,
    # docs/instances.md); its own checks are django_cd.E140-E149.
    "instances": None,
    # Smoke test options and the watch after a switch (django_cd.smoke, docs/smoketest.md).
    "smoke": {},
    "watch": {},
    # Role processes deployed with each release (workers, schedulers, daemons): role name ->
    # command, or a dict of PROCESS_DEFAULTS (django_cd.pipeline.processes, docs/deploy.md).
    "processes": {},
}
REQUIRED_FIELDS = ("settings", "root")

STRATEGIES = ("parallel", "rolling", "canary")
#: ``rollout``: hosts per batch of a rolling deploy (a number, or "25%" of the fleet),
#: canary hosts switched first, and the seconds they must keep passing checks.
ROLLOUT_DEFAULTS: dict[str, Any] = {"batch": 1, "canary": 1, "bake": 60}
BACKUP_POLICIES = ("auto", "always", "never")

#: Server types, and the keys each accepts besides ``type``.
SERVER_KEYS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "gunicorn": frozenset({"bind", "wsgi", "workers", "args", "timeout"}),
    "uwsgi": frozenset({"bind", "wsgi", "workers", "args", "fifo", "timeout"}),
    "command": frozenset({"start", "reload", "stop", "timeout"}),
}

ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
HOST_RE = re.compile(r"^(local|([A-Za-z0-9_.-]+@)?[A-Za-z0-9_.:\[\]-]+)$")


@dataclass(frozen=True)
class Server:
    """How an environment's app server is run and reloaded."""

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


#: The deploy steps of the engine, in order (``django_cd.pipeline.deploy``).
BUILT_IN_STEPS = (
    "upload", "venv", "check", "clean_pyc", "collectstatic", "serve_check", "plan", "backup",
    "migrate", "switch", "reload", "processes", "smoke", "finish",
)  # fmt: skip
#: Default deploy steps a project may replace (its own ``run``) or skip.
REPLACEABLE_STEPS = ("check", "clean_pyc", "collectstatic")
#: Steps a project's own step may go before or after: those of the prepare phase
#: (nothing has changed yet) and, after only, ``migrate`` (before the switch).
STEP_ANCHORS = ("check", "clean_pyc", "collectstatic", "serve_check", "migrate")
STEP_KEYS = (
    "name", "run", "after", "before", "timeout", "on_failure", "when", "hosts", "skip",
)  # fmt: skip
STEP_TIMEOUT = 600.0
STEP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Step:
    """A project's own deploy step, or a default one replaced or skipped (``skip``).

    ``run`` is the command, run in the release directory with the release's
    environment; ``manage.py`` as its first word means the release's own. It
    runs after or before another step; ``on_failure`` says whether its failure
    undoes the deploy (``undo``) or is a warning (``warn``); ``when`` is
    ``always`` or ``first_deploy`` (only while the environment has no release);
    ``hosts`` is ``each`` (every host of a fleet) or ``migration`` (once for the
    environment, on its migration host: for what changes the shared database).
    """

    name: str
    run: tuple[str, ...] = ()
    after: str | None = None
    before: str | None = None
    timeout: float = STEP_TIMEOUT
    on_failure: str = "undo"
    when: str = "always"
    hosts: str = "each"
    skip: bool = False


#: The keys of one role process, and their defaults (``command`` is required).
PROCESS_DEFAULTS: dict[str, Any] = {
    "command": None,
    # Asks the process to stop; after stop_timeout seconds it gets KILL.
    "stop_signal": "TERM",
    "stop_timeout": 10,
    # Sent instead of a restart when the process already runs the release; None: none.
    "reload_signal": None,
    # Seconds the new process must stay alive to count as started.
    "settle": 3,
}
ROLE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Process:
    """A role process (``worker``, ``scheduler``, ...) run from each release.

    ``command`` starting with ``manage.py`` runs the release's own; any other
    runs in the release directory with the release's virtualenv first on PATH.
    Signals are names without ``SIG`` (``TERM``, ``HUP``).
    """

    name: str
    command: tuple[str, ...]
    stop_signal: str = "TERM"
    stop_timeout: float = 10.0
    reload_signal: str | None = None
    settle: float = 3.0


@dataclass(frozen=True)
class Rollout:
    """How a ``rolling`` or ``canary`` deploy switches the fleet (``ROLLOUT_DEFAULTS``)."""

    batch: int | str = 1
    canary: int = 1
    bake: float = 60.0

    def batch_size(self, count: int) -> int:
        """Hosts per batch in a fleet of ``count``: a number, or a share ("25%")."""
        if isinstance(self.batch, str):
            return max(1, count * int(self.batch.rstrip("%")) // 100)
        return max(1, self.batch)


@dataclass(frozen=True)
class Environment:
    """One deploy target (``staging``, ``live``, ...), built from ``DJANGO_CD``."""

    name: str
    settings: str
    root: str
    hosts: tuple[str, ...]
    urls: tuple[str, ...]
    server: Server
    strategy: str
    backup: str
    manage: str
    requirements: str
    deploy_window: str | None
    deployers: tuple[str, ...]
    required_pipelines: tuple[str, ...]
    promote_from: str | None
    smoke_checks: tuple[Any, ...]
    notifications: tuple[Any, ...]
    allow_dirty: bool = True
    group: str | None = None
    inherit_env: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    #: The ``instances`` dict of a template of testing instances (django_cd.instances).
    instances: Mapping[str, Any] | None = None
    smoke: Mapping[str, Any] = field(default_factory=dict)
    watch: Mapping[str, Any] = field(default_factory=dict)
    #: pg_dump's compression level (0-9) for the deploy's backups; None: its default.
    backup_compression: int | None = None
    #: Role processes (workers, schedulers) deployed with each release (issue 14 §7).
    processes: tuple[Process, ...] = ()
    hosts_file: str | None = None
    hosts_command: str | None = None
    host_defaults: Mapping[str, Any] = field(default_factory=dict)
    migration_host: str | None = None
    rollout: Rollout = field(default_factory=Rollout)

    @property
    def strict(self) -> bool:
        """True at the end of a promotion path (``promote_from`` set): live-like.

        Strict environments hold the gates to the higher standard: ``check --deploy``
        fails on warnings, and risky migrations fail instead of warning.
        """
        return self.promote_from is not None

    @property
    def is_local(self) -> bool:
        """True when every host is the machine running the command."""
        return not self.listed_elsewhere and all(host == "local" for host in self.hosts)

    @property
    def listed_elsewhere(self) -> bool:
        """True when the hosts come from ``hosts_file`` or ``hosts_command``."""
        return bool(self.hosts_file or self.hosts_command)

    @property
    def url(self) -> str | None:
        return self.urls[0] if self.urls else None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with ``DJANGO_CD``: a check id, a message and a hint."""

    id: str
    msg: str
    hint: str

    @property
    def is_warning(self) -> bool:
        """Warnings (``django_cd.W...``) are reported but never stop a deploy."""
        return self.id.startswith("django_cd.W")


class UnknownEnvironment(ImproperlyConfigured):
    pass


@cache
def get_config() -> dict[str, Any]:
    """``DJANGO_CD`` merged over :data:`DEFAULTS` (unknown keys kept for the checks)."""
    user = getattr(settings, "DJANGO_CD", {})
    if not isinstance(user, Mapping):
        return dict(DEFAULTS)
    return {**DEFAULTS, **user}


@cache
def environments() -> dict[str, Environment]:
    """Every valid environment by name. Invalid ones raise ``ImproperlyConfigured``."""
    problems = [p for p in validate() if not p.is_warning]
    if problems:
        lines = "\n".join(f"  {p.id}: {p.msg} Hint: {p.hint}" for p in problems)
        raise ImproperlyConfigured(f"DJANGO_CD is not valid:\n{lines}")
    raw = get_config()["ENVIRONMENTS"]
    return {name: _build_environment(name, definition) for name, definition in raw.items()}


#: Issue 15: functions that build an environment DJANGO_CD does not list by name (a
#: testing instance, "<template>.<instance>"); django_cd.instances registers its own.
DERIVED_ENVIRONMENTS: list[Callable[[str], Environment | None]] = []


def get_environment(name: str) -> Environment:
    """The environment called ``name``, or ``UnknownEnvironment`` naming the known ones."""
    envs = environments()
    try:
        return envs[name]
    except KeyError:
        for derive in DERIVED_ENVIRONMENTS:
            derived = derive(name)
            if derived is not None:
                return derived
        known = ", ".join(sorted(envs)) or "none are defined"
        raise UnknownEnvironment(
            f"Unknown environment {name!r}. Known environments: {known}. "
            f"Define it in DJANGO_CD['ENVIRONMENTS'] or pick a known one."
        ) from None


def _build_environment(name: str, definition: Mapping[str, Any]) -> Environment:
    values = {**ENVIRONMENT_DEFAULTS, **definition}
    server = dict(values["server"])
    server_type = server.pop("type")
    return Environment(
        name=name,
        settings=values["settings"],
        root=str(PurePosixPath(values["root"])),
        hosts=tuple(values["hosts"]),
        urls=tuple(values["urls"]),
        server=Server(type=server_type, options=server),
        strategy=values["strategy"],
        backup=values["backup"],
        backup_compression=values["backup_compression"],
        manage=values["manage"],
        requirements=values["requirements"],
        deploy_window=values["deploy_window"],
        deployers=tuple(values["deployers"]),
        required_pipelines=tuple(values["required_pipelines"]),
        promote_from=values["promote_from"],
        smoke_checks=tuple(values["smoke_checks"]),
        notifications=tuple(values["notifications"]),
        allow_dirty=values["allow_dirty"],
        group=values["group"],
        instances=values["instances"],
        inherit_env=tuple(values["inherit_env"]),
        steps=tuple(_build_step(step) for step in values["steps"]),
        smoke=dict(values["smoke"]),
        watch=dict(values["watch"]),
        processes=tuple(_build_process(n, d) for n, d in values["processes"].items()),
        hosts_file=values["hosts_file"],
        hosts_command=values["hosts_command"],
        host_defaults=dict(values["host_defaults"]),
        migration_host=values["migration_host"],
        rollout=Rollout(**{**ROLLOUT_DEFAULTS, **values["rollout"]}),
    )


def _build_process(name: str, definition: str | Mapping[str, Any]) -> Process:
    values = {**PROCESS_DEFAULTS, **(definition if isinstance(definition, Mapping) else {})}
    command = definition if isinstance(definition, str) else values["command"]
    return Process(
        name=name,
        command=tuple(shlex.split(command)),
        stop_signal=_signal_name(values["stop_signal"]),
        stop_timeout=float(values["stop_timeout"]),
        reload_signal=_signal_name(values["reload_signal"]) if values["reload_signal"] else None,
        settle=float(values["settle"]),
    )


def _signal_name(name: str) -> str:
    """``"SIGterm"`` -> ``"TERM"``."""
    upper = name.upper()
    return upper[3:] if upper.startswith("SIG") else upper


def _build_step(step: Mapping[str, Any]) -> Step:
    run = step.get("run")
    return Step(
        name=step["name"],
        run=tuple(shlex.split(run) if isinstance(run, str) else run or ()),
        after=step.get("after"),
        before=step.get("before"),
        timeout=float(step.get("timeout", STEP_TIMEOUT)),
        on_failure=step.get("on_failure", "undo"),
        when=step.get("when", "always"),
        hosts=step.get("hosts", "each"),
        skip=bool(step.get("skip", False)),
    )


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "DJANGO_CD":
        get_config.cache_clear()
        environments.cache_clear()


# Validation ---------------------------------------------------------------
# Each function returns the problems of one part of the config; the ids are
# listed once in docs/checks.md and never reused.


def validate() -> list[Problem]:
    """Every problem in ``DJANGO_CD``, in a stable order."""
    user = getattr(settings, "DJANGO_CD", {})
    if not isinstance(user, Mapping):
        return [
            Problem(
                "django_cd.E001",
                f"DJANGO_CD must be a dict, not {type(user).__name__}.",
                "Set DJANGO_CD = {'ENVIRONMENTS': {...}} in your settings.",
            )
        ]
    problems: list[Problem] = []
    for key in user:
        if key not in DEFAULTS:
            problems.append(
                Problem(
                    "django_cd.E002",
                    f"DJANGO_CD has an unknown key {key!r}.",
                    f"Remove it; the known keys are {', '.join(DEFAULTS)}.",
                )
            )
    config = {**DEFAULTS, **user}
    problems += _validate_options(config)
    problems += _validate_environments(config["ENVIRONMENTS"], config["PIPELINES"])
    problems += _validate_deploy_options(config)
    problems += _validate_privacy(config)
    problems += _validate_monitoring(config)
    return problems


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)


def _validate_options(config: Mapping[str, Any]) -> list[Problem]:
    problems = []
    keep = config["KEEP_RELEASES"]
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 2:
        problems.append(
            Problem(
                "django_cd.E003",
                f"DJANGO_CD['KEEP_RELEASES'] must be an integer of at least 2, not {keep!r}.",
                "Keep at least the current and the previous release, e.g. 5.",
            )
        )
    pipelines = config["PIPELINES"]
    if not _is_str_list(pipelines) or not pipelines:
        problems.append(
            Problem(
                "django_cd.E004",
                "DJANGO_CD['PIPELINES'] must be a non-empty list of pipeline names.",
                "E.g. ['unit', 'functional', 'smoke', 'slow'].",
            )
        )
    elif config["DEFAULT_PIPELINE"] not in pipelines:
        problems.append(
            Problem(
                "django_cd.E005",
                f"DJANGO_CD['DEFAULT_PIPELINE'] {config['DEFAULT_PIPELINE']!r} "
                "is not one of DJANGO_CD['PIPELINES'].",
                f"Use one of {', '.join(pipelines)}, or add it to PIPELINES.",
            )
        )
    for key in ("RESULTS_DIR",):
        if not isinstance(config[key], str) or not config[key]:
            problems.append(_type_problem(f"DJANGO_CD[{key!r}]", "a non-empty path string"))
    if not _is_str_list(config["FIRST_PARTY_APPS"]):
        problems.append(_type_problem("DJANGO_CD['FIRST_PARTY_APPS']", "a list of app labels"))
    if config["REPOSITORY"] is not None and not isinstance(config["REPOSITORY"], str):
        problems.append(_type_problem("DJANGO_CD['REPOSITORY']", "a path string or None"))
    if not _is_str_list(config["CI_IDENTITY_VARIABLES"]):
        problems.append(
            _type_problem("DJANGO_CD['CI_IDENTITY_VARIABLES']", "a list of variable names")
        )
    return problems


def _type_problem(where: str, expected: str) -> Problem:
    return Problem(
        "django_cd.E006",
        f"{where} must be {expected}.",
        "Fix the value in DJANGO_CD; docs/settings.md lists every key with an example.",
    )


def _validate_environments(envs: Any, pipelines: Any) -> list[Problem]:
    if not isinstance(envs, Mapping):
        return [_type_problem("DJANGO_CD['ENVIRONMENTS']", "a dict of name -> environment")]
    problems: list[Problem] = []
    seen_roots: dict[tuple[str, str], str] = {}
    for name, definition in envs.items():
        where = f"Environment {name!r}"
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            problems.append(
                Problem(
                    "django_cd.E007",
                    f"{where}: the name is not valid.",
                    "Use lowercase letters, digits, '-' and '_', starting with a letter, "
                    "e.g. 'staging'.",
                )
            )
            continue
        if not isinstance(definition, Mapping):
            problems.append(_type_problem(where, "a dict of fields"))
            continue
        problems += _validate_environment(where, definition, pipelines, set(envs))
        hosts, root = definition.get("hosts", ["local"]), definition.get("root")
        if _is_str_list(hosts) and isinstance(root, str):
            for host in hosts:
                other = seen_roots.setdefault((host, root), name)
                if other != name:
                    problems.append(
                        Problem(
                            "django_cd.E008",
                            f"{where} shares root {root!r} on host {host!r} "
                            f"with environment {other!r}.",
                            "Each environment needs its own root, or their releases "
                            "would overwrite each other.",
                        )
                    )
    return problems


def _validate_environment(
    where: str, env: Mapping[str, Any], pipelines: Any, names: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    for key in env:
        if key not in ENVIRONMENT_DEFAULTS:
            problems.append(
                Problem(
                    "django_cd.E009",
                    f"{where} has an unknown field {key!r}.",
                    f"Remove it; the known fields are {', '.join(ENVIRONMENT_DEFAULTS)}.",
                )
            )
    for key in REQUIRED_FIELDS:
        if key not in env:
            problems.append(
                Problem(
                    "django_cd.E010",
                    f"{where} is missing the required field {key!r}.",
                    "docs/settings.md shows a complete environment.",
                )
            )
    values = {**ENVIRONMENT_DEFAULTS, **env}

    def bad(field_name: str, expected: str) -> None:
        problems.append(_type_problem(f"{where}: {field_name!r}", expected))

    if "settings" in env and not (
        isinstance(values["settings"], str) and DOTTED_RE.match(values["settings"])
    ):
        bad("settings", "a dotted module path such as 'settings.staging'")
    root = values["root"]
    if "root" in env:
        if not isinstance(root, str):
            bad("root", "a path string")
        elif not root.startswith("/"):
            problems.append(
                Problem(
                    "django_cd.E011",
                    f"{where}: root {root!r} is not an absolute path.",
                    "Use an absolute path such as '/srv/myproject/staging'.",
                )
            )
    hosts = values["hosts"]
    if not isinstance(hosts, list | tuple):
        bad("hosts", "a list of host names ('local' or 'user@host[:port]')")
    elif not hosts:
        problems.append(
            Problem(
                "django_cd.E012",
                f"{where} has an empty hosts list.",
                "List at least one host, or leave 'hosts' out to deploy to this machine.",
            )
        )
    else:
        for host in hosts:
            if isinstance(host, str) and host == "local":
                continue
            if not isinstance(host, str | Mapping) or (
                isinstance(host, str) and not HOST_RE.match(host)
            ):
                bad("hosts", f"host names ('local' or 'user@host[:port]'), not {host!r}")
        duplicates = sorted({h for h in hosts if isinstance(h, str) and hosts.count(h) > 1})
        if duplicates:
            problems.append(
                Problem(
                    "django_cd.E070",
                    f"{where} lists host(s) {', '.join(duplicates)} more than once.",
                    "List each host once.",
                )
            )
    problems += _validate_urls(where, values["urls"])
    problems += _validate_server(where, values["server"])
    if values["strategy"] not in STRATEGIES:
        problems.append(
            Problem(
                "django_cd.E015",
                f"{where}: strategy {values['strategy']!r} is not known.",
                f"Use one of {', '.join(STRATEGIES)}.",
            )
        )
    if values["backup"] not in BACKUP_POLICIES:
        problems.append(
            Problem(
                "django_cd.E016",
                f"{where}: backup {values['backup']!r} is not known.",
                f"Use one of {', '.join(BACKUP_POLICIES)}.",
            )
        )
    level = values["backup_compression"]
    if level is not None and (type(level) is not int or not 0 <= level <= 9):
        problems.append(
            Problem(
                "django_cd.E019",
                f"{where}: backup_compression {level!r} is not a compression level.",
                "Use an integer from 0 (none, fastest) to 9 (smallest), or None for "
                "pg_dump's default.",
            )
        )
    for key in ("manage", "requirements"):
        if not isinstance(values[key], str) or not values[key] or values[key].startswith("/"):
            bad(key, "a path relative to the repository root")
    for key in ("deployers", "required_pipelines"):
        if not isinstance(values[key], list | tuple) or not all(
            isinstance(v, str) for v in values[key]
        ):
            bad(key, "a list of strings")
    if _is_str_list(pipelines) and isinstance(values["required_pipelines"], list | tuple):
        for name in values["required_pipelines"]:
            if isinstance(name, str) and name not in pipelines:
                problems.append(
                    Problem(
                        "django_cd.E017",
                        f"{where} requires pipeline {name!r}, which is not declared.",
                        f"Use one of {', '.join(pipelines)}, or add it to DJANGO_CD['PIPELINES'].",
                    )
                )
    promote_from = values["promote_from"]
    if promote_from is not None and promote_from not in names:
        problems.append(
            Problem(
                "django_cd.E018",
                f"{where} promotes from {promote_from!r}, which is not an environment.",
                f"Use one of {', '.join(sorted(names))}, or None.",
            )
        )
    if values["deploy_window"] is not None and not isinstance(values["deploy_window"], str):
        bad("deploy_window", "a string such as 'mon-fri 09:00-16:00', or None")
    for key in ("smoke_checks", "notifications"):
        if not isinstance(values[key], list | tuple):
            bad(key, "a list")
    problems += _validate_hooks(where, values["smoke_checks"])
    problems += _validate_inherit_env(where, values["inherit_env"])
    problems += _validate_steps(where, values["steps"])
    problems += _validate_processes(where, values["processes"])
    problems += _validate_fleet(where, env, values)
    return problems


def _validate_steps(where: str, steps: Any) -> list[Problem]:
    """A project's steps: each problem is found here, not halfway through a deploy."""
    if not isinstance(steps, list | tuple) or not all(
        isinstance(step, Mapping) and isinstance(step.get("name"), str) for step in steps
    ):
        return [
            Problem(
                "django_cd.E060",
                f"{where}: 'steps' must be a list of dicts, each with a 'name'.",
                "e.g. [{'name': 'compress', 'after': 'collectstatic', "
                "'run': 'manage.py compress --force'}] (docs/deploy.md).",
            )
        ]
    problems: list[Problem] = []
    seen: list[str] = []
    for step in steps:
        problems += _validate_step(f"{where}: step {step['name']!r}", step, seen)
        seen.append(step["name"])
    return problems


def _validate_step(where: str, step: Mapping[str, Any], earlier: list[str]) -> list[Problem]:
    name = step["name"]

    def problem(number: str, message: str, hint: str) -> list[Problem]:
        return [Problem(f"django_cd.E{number}", f"{where} {message}", hint)]

    unknown = [key for key in step if key not in STEP_KEYS]
    if unknown:
        return problem(
            "061",
            f"has unknown key(s) {', '.join(map(repr, unknown))}.",
            f"A step's keys are {', '.join(STEP_KEYS)}.",
        )
    if not STEP_NAME_RE.match(name) or name in earlier:
        return problem(
            "062",
            "needs a name of its own: lowercase letters, digits and _, not used twice.",
            "Name each step once, e.g. 'compress' or 'npm_build'.",
        )
    run, after, before = step.get("run"), step.get("after"), step.get("before")
    default = name in BUILT_IN_STEPS
    if step.get("skip") is not None and not isinstance(step.get("skip"), bool):
        return problem("064", "has a 'skip' that is not True or False.", "Use 'skip': True.")
    if default:
        if name not in REPLACEABLE_STEPS or after or before or not (run or step.get("skip")):
            return problem(
                "063",
                "is a default step: only check, clean_pyc and collectstatic can be replaced "
                "(with 'run') or skipped (with 'skip': True), in their place.",
                "Give your own step another name, with 'after' or 'before'.",
            )
    elif step.get("skip"):
        return problem("063", "skips a step that is not a default one.", "Remove the step.")
    elif (after is None) == (before is None) or (after or before) not in (
        *STEP_ANCHORS,
        *earlier,
    ):
        return problem(
            "063",
            "needs exactly one of 'after' or 'before', naming a step it runs next to.",
            f"Use one of {', '.join(STEP_ANCHORS)} or an earlier step of yours "
            "(only 'after' for migrate).",
        )
    elif before == "migrate":
        return problem(
            "063",
            "runs before migrate: between the backup and migrate nothing may run.",
            "Use 'after': 'serve_check' (before anything changes) or 'after': 'migrate'.",
        )
    if step.get("skip"):
        return []
    if not (
        (isinstance(run, str) and _splits(run) and run.strip())
        or (isinstance(run, list | tuple) and run and all(isinstance(a, str) for a in run))
    ):
        return problem(
            "064",
            f"has a 'run' that is not a command: {run!r}.",
            "Give a command line ('manage.py compress --force') or a list of arguments "
            "(['sh', '-c', 'npm ci && npm run build']).",
        )
    timeout = step.get("timeout", STEP_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        return problem("064", f"has a 'timeout' of {timeout!r}.", "Give seconds, e.g. 600.")
    if step.get("on_failure", "undo") not in ("undo", "warn"):
        return problem(
            "064",
            f"has 'on_failure' {step.get('on_failure')!r}.",
            "Use 'undo' (its failure undoes the deploy) or 'warn' (a warning, the deploy "
            "goes on).",
        )
    if step.get("when", "always") not in ("always", "first_deploy"):
        return problem(
            "064",
            f"has 'when' {step.get('when')!r}.",
            "Use 'always' or 'first_deploy' (only while the environment has no release).",
        )
    if step.get("hosts", "each") not in ("each", "migration"):
        return problem(
            "064",
            f"has 'hosts' {step.get('hosts')!r}.",
            "Use 'each' (on every host of the fleet) or 'migration' (once, on the "
            "migration host).",
        )
    return []


def _validate_processes(where: str, processes: Any) -> list[Problem]:
    """Role processes (django_cd.E170-E174): every value checked before a deploy runs."""
    example = (
        "e.g. {'worker': 'manage.py rqworker default', 'alerts': {'command': "
        "'manage.py sendalerts', 'stop_timeout': 10}} (docs/deploy.md)."
    )
    if not isinstance(processes, Mapping):
        return [
            Problem(
                "django_cd.E170",
                f"{where}: 'processes' must be a dict of role name -> command, "
                f"not {type(processes).__name__}.",
                f"Give each role process a name and a command, {example}",
            )
        ]
    problems: list[Problem] = []
    for name, definition in processes.items():
        at = f"{where}: process {name!r}"
        if not isinstance(name, str) or not ROLE_NAME_RE.match(name):
            problems.append(
                Problem(
                    "django_cd.E171",
                    f"{at}: the role name is not valid.",
                    "Use lowercase letters, digits, '-' and '_', starting with a letter "
                    "(at most 32), e.g. 'worker': it names the process's log and state files.",
                )
            )
            continue
        problems += _validate_process(at, definition, example)
    return problems


def _validate_process(at: str, definition: Any, example: str) -> list[Problem]:
    def problem(number: str, message: str, hint: str) -> list[Problem]:
        return [Problem(f"django_cd.E{number}", f"{at} {message}", hint)]

    if isinstance(definition, str):
        definition = {"command": definition}
    if not isinstance(definition, Mapping):
        return problem("172", "must be a command string or a dict.", example)
    unknown = [key for key in definition if key not in PROCESS_DEFAULTS]
    if unknown:
        return problem(
            "172",
            f"has unknown key(s) {', '.join(map(repr, unknown))}.",
            f"A role process's keys are {', '.join(PROCESS_DEFAULTS)}.",
        )
    if not _splits(definition.get("command")):
        return problem(
            "172",
            f"has a 'command' that is not a command line: {definition.get('command')!r}.",
            "Give a command line with balanced quotes, e.g. 'manage.py rqworker default' "
            "(the release's manage.py) or 'celery -A proj worker' (from the release's "
            "virtualenv).",
        )
    found: list[Problem] = []
    for key in ("stop_signal", "reload_signal"):
        value = definition.get(key, PROCESS_DEFAULTS[key])
        if value is None and key == "reload_signal":
            continue
        if not (
            isinstance(value, str) and f"SIG{_signal_name(value)}" in signal.Signals.__members__
        ):
            found += problem(
                "173",
                f"has {key!r} {value!r}, which is not a signal name.",
                "Use a name such as 'TERM', 'INT', 'QUIT', 'HUP' or 'USR1'"
                + (", or None for no reload signal." if key == "reload_signal" else "."),
            )
    for key in ("stop_timeout", "settle"):
        value = definition.get(key, PROCESS_DEFAULTS[key])
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            found += problem(
                "174",
                f"has {key!r} {value!r}: it must be a positive number of seconds.",
                "E.g. 'stop_timeout': 10 (how long the process may take to stop before KILL), "
                "'settle': 3 (how long a new process must stay alive to count as started).",
            )
    return found


INHERIT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\*?$")


def _validate_inherit_env(where: str, names: Any) -> list[Problem]:
    if isinstance(names, list | tuple) and all(
        isinstance(n, str) and INHERIT_RE.match(n) for n in names
    ):
        return []
    return [
        Problem(
            "django_cd.E059",
            f"{where}: 'inherit_env' must be a list of variable names (a trailing * "
            f"matches a prefix), not {names!r}.",
            "List the deployer's variables the release needs, e.g. ['SSL_CERT_FILE', "
            "'AWS_*']; secrets and options belong in shared/.env.",
        )
    ]


def _validate_hooks(where: str, hooks: Any) -> list[Problem]:
    """Import every dotted path now: a typo is a check error, not a rollback in production."""
    if not isinstance(hooks, list | tuple):
        return []
    problems = []
    for hook in hooks:
        if isinstance(hook, Mapping):  # a declared HTTP check: django_cd.smoke.config
            continue
        if not isinstance(hook, str):
            if not callable(hook):
                problems.append(
                    _type_problem(f"{where}: 'smoke_checks'", "dotted paths or callables")
                )
            continue
        try:
            found = import_string(hook)
        except ImportError as error:
            problems.append(
                Problem(
                    "django_cd.E073",
                    f"{where}: smoke check {hook!r} cannot be imported ({error}).",
                    "Fix the dotted path to a callable (env, url, release_id), "
                    "e.g. 'myproject.smoke.front_page'.",
                )
            )
            continue
        if not callable(found):
            problems.append(
                Problem(
                    "django_cd.E074",
                    f"{where}: smoke check {hook!r} is not callable.",
                    "Point it at a function taking (env, url, release_id).",
                )
            )
    return problems


def _validate_fleet(
    where: str, env: Mapping[str, Any], values: Mapping[str, Any]
) -> list[Problem]:
    """The SSH hosts of an environment, where they are listed, and how they are rolled."""
    from django_cd.pipeline.hostspec import HostSpec, HostSpecError

    problems: list[Problem] = []

    def problem(number: str, message: str, hint: str) -> None:
        problems.append(Problem(f"django_cd.{number}", f"{where}: {message}", hint))

    defaults = values["host_defaults"]
    if not isinstance(defaults, Mapping) or "host" in defaults:
        problem(
            "E183",
            "'host_defaults' must be a dict of host options (no 'host').",
            "Give the options every SSH host shares, e.g. {'key_file': '~/.ssh/deploy'}.",
        )
        defaults = {}
    else:
        try:
            HostSpec.parse({"host": "user@defaults", **defaults})
        except HostSpecError as error:
            problem("E183", f"host_defaults: {error}", "docs/hosts.md lists the host options.")
            defaults = {}
    hosts = values["hosts"] if isinstance(values["hosts"], list | tuple) else []
    addresses: list[str] = []
    for number, entry in enumerate(hosts):
        if entry == "local" or not isinstance(entry, str | Mapping) or entry in hosts[:number]:
            continue  # the same text twice is E070
        try:
            addresses.append(HostSpec.parse(entry, defaults).address)
        except HostSpecError as error:
            problem("E180", str(error), "docs/hosts.md shows every form of a host entry.")
    if addresses and "local" in hosts:
        problem(
            "E180",
            "'local' is listed with SSH hosts.",
            "Reach this machine over SSH as well ('user@its-name'), or deploy it as an "
            "environment of its own.",
        )
    if len(set(addresses)) < len(addresses):
        twice = sorted({a for a in addresses if addresses.count(a) > 1})
        problem("E180", f"host(s) {', '.join(twice)} are listed twice.", "List each host once.")
    sources = [key for key in ("hosts_file", "hosts_command") if values[key] is not None]
    for key in sources:
        if not isinstance(values[key], str) or not values[key].strip():
            problem("E181", f"{key!r} must be a non-empty string.", "docs/hosts.md")
    if len(sources) > 1 or (sources and "hosts" in env):
        problem(
            "E181",
            f"the hosts are listed in more than one place ({', '.join(['hosts', *sources])}).",
            "Keep one of 'hosts', 'hosts_file' and 'hosts_command'.",
        )
    migration_host = values["migration_host"]
    if migration_host is not None and not sources and migration_host not in addresses:
        problem(
            "E182",
            f"migration_host {migration_host!r} is not one of its SSH hosts.",
            f"Name one as 'user@host:port': {', '.join(addresses) or 'none are listed'}.",
        )
    problems += _validate_rollout(where, values["rollout"])
    return problems


def _validate_rollout(where: str, rollout: Any) -> list[Problem]:
    def problem(message: str) -> list[Problem]:
        return [
            Problem(
                "django_cd.E184",
                f"{where}: rollout {message}",
                "e.g. 'rollout': {'batch': '25%', 'canary': 1, 'bake': 60} (docs/hosts.md).",
            )
        ]

    if not isinstance(rollout, Mapping):
        return problem("must be a dict.")
    unknown = sorted(set(rollout) - set(ROLLOUT_DEFAULTS))
    if unknown:
        return problem(f"has unknown key(s) {', '.join(map(repr, unknown))}.")
    batch = rollout.get("batch", 1)
    share = isinstance(batch, str) and re.fullmatch(r"(100|[1-9][0-9]?)%", batch)
    if not share and (type(batch) is not int or batch < 1):
        return problem(f"batch {batch!r} is neither a number of hosts (1 or more) nor 'N%'.")
    canary = rollout.get("canary", 1)
    if type(canary) is not int or canary < 1:
        return problem(f"canary {canary!r} is not a number of hosts (1 or more).")
    bake = rollout.get("bake", 60)
    if not isinstance(bake, int | float) or isinstance(bake, bool) or bake < 0:
        return problem(f"bake {bake!r} is not a number of seconds (0 or more).")
    return []


def _validate_urls(where: str, urls: Any) -> list[Problem]:
    if not isinstance(urls, list | tuple):
        return [_type_problem(f"{where}: 'urls'", "a list of http(s) URLs")]
    problems = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(
                Problem(
                    "django_cd.E013",
                    f"{where}: {url!r} is not an http(s) URL.",
                    "Use the full public URL, e.g. 'https://staging.example.com/'.",
                )
            )
    return problems


def _validate_server(where: str, server: Any) -> list[Problem]:
    if not isinstance(server, Mapping) or server.get("type") not in SERVER_KEYS:
        return [
            Problem(
                "django_cd.E014",
                f"{where}: 'server' must be a dict whose 'type' is one of "
                f"{', '.join(SERVER_KEYS)}.",
                "E.g. {'type': 'gunicorn', 'bind': '127.0.0.1:8001', 'wsgi': 'myproject.wsgi'}.",
            )
        ]
    allowed = SERVER_KEYS[server["type"]]
    unknown = sorted(set(server) - allowed - {"type"})
    if unknown:
        return [
            Problem(
                "django_cd.E071",
                f"{where}: server type {server['type']!r} does not take "
                f"{', '.join(map(repr, unknown))}.",
                f"Its keys are: {', '.join(sorted(allowed)) or 'only type'}.",
            )
        ]
    if server["type"] == "command" and not isinstance(server.get("reload"), str):
        return [
            Problem(
                "django_cd.E072",
                f"{where}: server type 'command' needs a 'reload' command string.",
                "E.g. {'type': 'command', 'reload': 'sudo systemctl reload myproject'}.",
            )
        ]
    return []


# Deploy options (django_cd.E050-E069, django_cd.pipeline) ------------------


def _validate_deploy_options(config: Mapping[str, Any]) -> list[Problem]:
    problems = []
    timeout = config["LOCK_TIMEOUT"]
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        problems.append(
            Problem(
                "django_cd.E050",
                f"DJANGO_CD['LOCK_TIMEOUT'] must be a positive number of seconds, "
                f"not {timeout!r}.",
                "Use the longest a deploy may take, e.g. 3600.",
            )
        )
    expiry = config["LOCK_EXPIRY"]
    if not isinstance(expiry, int | float) or isinstance(expiry, bool) or expiry < 1:
        problems.append(
            Problem(
                "django_cd.E065",
                f"DJANGO_CD['LOCK_EXPIRY'] must be a number of seconds of at least 1, "
                f"not {expiry!r}.",
                "Use how long a deployer's silence means it died, e.g. 60 (the default).",
            )
        )
    envs = config["ENVIRONMENTS"]
    if not isinstance(envs, Mapping):
        return problems
    for name, env in envs.items():
        if not isinstance(env, Mapping):
            continue
        if not isinstance(env.get("allow_dirty", True), bool):
            problems.append(
                Problem(
                    "django_cd.E051",
                    f"Environment {name!r}: 'allow_dirty' must be True or False.",
                    "Set it to False for environments such as live.",
                )
            )
        server = env.get("server", {})
        if isinstance(server, Mapping) and server.get("type") in SERVER_KEYS:
            problems += _validate_server_values(
                f"Environment {name!r}", server, template="instances" in env
            )
    return problems


WSGI_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$")


def _validate_server_values(
    where: str, server: Mapping[str, Any], template: bool = False
) -> list[Problem]:
    """Every value of a server a user can set, so none first fails mid-deploy.

    A template of testing instances (``template``) has no ``bind``: each instance gets its own.
    """
    problems = []

    def problem(check_id: str, message: str, hint: str) -> None:
        problems.append(Problem(check_id, f"{where}: {message}", hint))

    if server["type"] in ("gunicorn", "uwsgi"):
        missing = [
            k for k in ("bind", "wsgi") if k not in server and not (template and k == "bind")
        ]
        if missing:
            problem(
                "django_cd.E058",
                f"server type {server['type']!r} needs {' and '.join(map(repr, missing))}.",
                "django-cd starts this server itself: give it e.g. "
                "{'bind': '127.0.0.1:8001', 'wsgi': 'myproject.wsgi'}.",
            )
    timeout = server.get("timeout", 30)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        problem(
            "django_cd.E052",
            f"server 'timeout' must be a positive number of seconds, not {timeout!r}.",
            "E.g. 'timeout': 30 (how long a start or reload may take).",
        )
    workers = server.get("workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        problem(
            "django_cd.E053",
            f"server 'workers' must be a whole number of at least 1, not {workers!r}.",
            "E.g. 'workers': 2 (about twice the cores is a common start).",
        )
    if "bind" in server and not _valid_bind(server["bind"]):
        problem(
            "django_cd.E054",
            f"server 'bind' {server['bind']!r} is not 'host:port' (port 1-65535).",
            "E.g. 'bind': '127.0.0.1:8001' (an address only this environment serves).",
        )
    if "wsgi" in server and not (
        isinstance(server["wsgi"], str) and WSGI_RE.match(server["wsgi"])
    ):
        problem(
            "django_cd.E055",
            f"server 'wsgi' {server['wsgi']!r} is not a module path.",
            "E.g. 'wsgi': 'myproject.wsgi' or 'myproject.wsgi:application'.",
        )
    for key in ("args", "start", "reload", "stop"):
        if (
            key in server
            and not (key == "args" and server[key] == "")
            and not _splits(server[key])
        ):
            problem(
                "django_cd.E056",
                f"server {key!r} must be a command line string with balanced quotes.",
                f"E.g. '{key}': 'sudo systemctl {key} myproject' (split as a shell would).",
            )
    if "fifo" in server and not (
        isinstance(server["fifo"], str) and server["fifo"].startswith("/")
    ):
        problem(
            "django_cd.E057",
            f"server 'fifo' {server['fifo']!r} is not an absolute path.",
            "Leave it out (django-cd makes one per master) or use e.g. '/run/myproject.fifo'.",
        )
    return problems


def _valid_bind(bind: Any) -> bool:
    if not isinstance(bind, str) or ":" not in bind:
        return False
    host, _, port = bind.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def _splits(command: Any) -> bool:
    if not isinstance(command, str) or not command.strip():
        return False
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


# Privacy and backup retention (django_cd.E090-E099) --------------------------


def _validate_privacy(config: Mapping[str, Any]) -> list[Problem]:
    problems = []
    keep = config["KEEP_FAILED_BACKUPS"]
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        problems.append(
            Problem(
                "django_cd.E090",
                "DJANGO_CD['KEEP_FAILED_BACKUPS'] must be an integer of at least 0, "
                f"not {keep!r}.",
                "The number of failed deploys' backups to keep for inspection, e.g. 2.",
            )
        )
    envs = config["ENVIRONMENTS"]
    if not isinstance(envs, Mapping):
        return problems
    for name, env in envs.items():
        if isinstance(env, Mapping):
            problems += _validate_group(name, env.get("group"))
    return problems


def _validate_group(name: str, group: Any) -> list[Problem]:
    if group is None:
        return []
    if not isinstance(group, str) or not group:
        return [
            Problem(
                "django_cd.E091",
                f"Environment {name!r}: 'group' must be a group name or None, not {group!r}.",
                "E.g. 'deploy', or None to keep the deploy root to the deploying user.",
            )
        ]
    try:
        grp.getgrnam(group)
    except KeyError:
        return [
            Problem(
                "django_cd.E092",
                f"Environment {name!r}: the group {group!r} does not exist on this host.",
                f"Create it (groupadd {group}) and add the deploying user, or fix the name.",
            )
        ]
    return []


# Smoke tests, the watch, notifications, metrics (django_cd.E130-E139, W130-W139) ----


def _validate_monitoring(config: Mapping[str, Any]) -> list[Problem]:
    from django_cd.monitoring import config as monitoring_config
    from django_cd.smoke import config as smoke_config  # the layers own their keys

    return smoke_config.validate(config) + monitoring_config.validate(config)
