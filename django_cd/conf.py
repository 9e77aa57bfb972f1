"""The one accessor for django-cd's settings: the ``DJANGO_CD`` dict.

Everything in django-cd reads its options through :func:`get_config` and
:func:`get_environment`; nothing else looks at ``django.conf.settings`` for
them. Values are validated by :func:`validate` (which the system checks in
:mod:`django_cd.checks` report) and cached until a setting changes, so
``override_settings`` works in tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

#: Top-level keys of ``DJANGO_CD`` and their defaults (docs/settings.md).
DEFAULTS: dict[str, Any] = {
    # name -> environment definition; see ENVIRONMENT_DEFAULTS.
    "ENVIRONMENTS": {},
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
}

#: Fields of one environment and their defaults. ``None`` marks a required field.
ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "settings": None,
    "root": None,
    "hosts": ["local"],
    "urls": [],
    "server": {"type": "none"},
    "strategy": "parallel",
    "backup": "auto",
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
}
REQUIRED_FIELDS = ("settings", "root")

STRATEGIES = ("parallel", "rolling", "canary")
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

    @property
    def is_local(self) -> bool:
        """True when every host is the machine running the command."""
        return all(host == "local" for host in self.hosts)

    @property
    def url(self) -> str | None:
        return self.urls[0] if self.urls else None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with ``DJANGO_CD``: a check id, a message and a hint."""

    id: str
    msg: str
    hint: str


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
    problems = validate()
    if problems:
        lines = "\n".join(f"  {p.id}: {p.msg} Hint: {p.hint}" for p in problems)
        raise ImproperlyConfigured(f"DJANGO_CD is not valid:\n{lines}")
    raw = get_config()["ENVIRONMENTS"]
    return {name: _build_environment(name, definition) for name, definition in raw.items()}


def get_environment(name: str) -> Environment:
    """The environment called ``name``, or ``UnknownEnvironment`` naming the known ones."""
    envs = environments()
    try:
        return envs[name]
    except KeyError:
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
        manage=values["manage"],
        requirements=values["requirements"],
        deploy_window=values["deploy_window"],
        deployers=tuple(values["deployers"]),
        required_pipelines=tuple(values["required_pipelines"]),
        promote_from=values["promote_from"],
        smoke_checks=tuple(values["smoke_checks"]),
        notifications=tuple(values["notifications"]),
        allow_dirty=values["allow_dirty"],
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
            if not isinstance(host, str) or not HOST_RE.match(host):
                bad("hosts", f"host names ('local' or 'user@host[:port]'), not {host!r}")
        duplicates = sorted({h for h in hosts if isinstance(h, str) and hosts.count(h) > 1})
        if duplicates:
            problems.append(
                Problem(
                    "django_cd.E008",
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
    return problems


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
                "django_cd.E014",
                f"{where}: server type {server['type']!r} does not take "
                f"{', '.join(map(repr, unknown))}.",
                f"Its keys are: {', '.join(sorted(allowed)) or 'only type'}.",
            )
        ]
    if server["type"] == "command" and not isinstance(server.get("reload"), str):
        return [
            Problem(
                "django_cd.E014",
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
    return problems
