"""What an environment's smoke test checks, read from its ``smoke_checks`` and ``smoke``.

``smoke_checks`` holds dotted paths (or callables) ``(env, url, release_id)`` that
raise to fail, as before, and declared HTTP checks::

    {"name": "notes", "path": "/notes/", "status": 200, "contains": "Notes",
     "not_contains": "Traceback", "max_seconds": 2, "login": True}

``smoke`` holds the options: which default checks run, the start-up grace period,
the request timeout, and where the login page, the health URL and the smoke
user's credentials are. Every key is validated by :func:`validate` (ids
E130-E136, docs/checks.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from django_cd.conf import Environment, Problem

#: The default checks a project gets without declaring any (``smoke["defaults"]``).
DEFAULT_CHECKS = ("home", "admin", "health")
OPTION_DEFAULTS: dict[str, Any] = {
    "defaults": ["home", "admin"],
    "grace_seconds": 30,
    "timeout": 10,
    "login_path": "/admin/login/",
    "health_path": "/health/",
    "user_variable": "DJANGO_CD_SMOKE_USER",
    "password_variable": "DJANGO_CD_SMOKE_PASSWORD",
    # What the environment's URLs must answer after the switch: None for any 2xx, or a
    # 3xx whose target does not answer an error; else a list of statuses, not followed.
    "url_status": None,
}
CHECK_KEYS = frozenset(
    {"name", "path", "method", "status", "contains", "not_contains", "max_seconds",
     "warn_seconds", "login", "json", "release"}
)  # fmt: skip
METHODS = ("GET", "HEAD")
WATCH_DEFAULTS: dict[str, Any] = {"seconds": 0, "max_5xx": 0, "interval": 2}
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SmokeCheck:
    """One check: an HTTP request and what its answer must be, or a callable."""

    name: str
    path: str = "/"
    method: str = "GET"
    status: int = 200
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    max_seconds: float = 10.0
    warn_seconds: float | None = None
    login: bool = False
    json: bool = False
    #: Whether the answer must carry the expected release id (X-Release).
    release: bool = True
    #: A dotted-path check: called with (env, url, release_id); raises to fail.
    call: Callable[..., Any] | None = None


@dataclass(frozen=True)
class SmokeOptions:
    defaults: tuple[str, ...]
    grace_seconds: float
    timeout: float
    login_path: str
    health_path: str
    user_variable: str
    password_variable: str
    url_status: tuple[int, ...] | None = None


@dataclass(frozen=True)
class WatchOptions:
    """The watch after a switch: how long, the 5xx count that rolls back, how often."""

    seconds: float
    max_5xx: int
    interval: float


def options(env: Environment) -> SmokeOptions:
    values = {**OPTION_DEFAULTS, **env.smoke}
    values["defaults"] = tuple(values["defaults"])
    if values["url_status"] is not None:
        values["url_status"] = tuple(values["url_status"])
    return SmokeOptions(**values)


def watch_options(env: Environment) -> WatchOptions:
    return WatchOptions(**{**WATCH_DEFAULTS, **env.watch})


def checks(env: Environment) -> list[SmokeCheck]:
    """The environment's checks in order: the defaults, then the declared ones."""
    opts = options(env)
    timeout = float(opts.timeout)
    found: list[SmokeCheck] = []
    if "home" in opts.defaults:
        found.append(SmokeCheck("home", "", max_seconds=timeout))
    if "admin" in opts.defaults:
        found.append(SmokeCheck("admin login page", opts.login_path, max_seconds=timeout))
    if "health" in opts.defaults:
        path = opts.health_path + ("&" if "?" in opts.health_path else "?") + "format=json"
        found.append(SmokeCheck("health", path, json=True, max_seconds=timeout))
    for entry in env.smoke_checks:
        found.append(_declared(entry, timeout))
    return found


def _declared(entry: Any, timeout: float) -> SmokeCheck:
    if isinstance(entry, str):
        return SmokeCheck(entry, call=import_string(entry), max_seconds=timeout)
    if callable(entry):
        name = f"{entry.__module__}.{getattr(entry, '__qualname__', repr(entry))}"
        return SmokeCheck(name, call=entry, max_seconds=timeout)
    values = dict(entry)
    for key in ("contains", "not_contains"):
        if isinstance(values.get(key), str):
            values[key] = (values[key],)
        elif key in values:
            values[key] = tuple(values[key])
    values.setdefault("name", values["path"])
    values.setdefault("max_seconds", timeout)
    values["method"] = values.get("method", "GET").upper()
    return SmokeCheck(**values)


# Validation -------------------------------------------------------------------


def validate(config: Mapping[str, Any]) -> list[Problem]:
    """Problems in every environment's ``smoke``, ``smoke_checks`` and ``watch``."""
    envs = config.get("ENVIRONMENTS")
    if not isinstance(envs, Mapping):
        return []
    problems: list[Problem] = []
    for name, env in envs.items():
        if isinstance(env, Mapping):
            where = f"Environment {name!r}"
            problems += _validate_options(where, env.get("smoke", {}))
            problems += _validate_checks(where, env.get("smoke_checks", []))
            problems += _validate_watch(where, env.get("watch", {}))
            problems += _watch_counts(where, env.get("watch", {}))
    return problems


def _watch_counts(where: str, watch: Any) -> list[Problem]:
    from django_cd.smoke import counter

    seconds = watch.get("seconds", 0) if isinstance(watch, Mapping) else 0
    if not _positive(seconds) or counter.installed():
        return []
    return [
        Problem(
            "django_cd.W130",
            f"{where}: the watch runs, but {counter.MIDDLEWARE_PATH} is not in MIDDLEWARE, "
            "so 5xx responses are not counted (only the smoke checks are repeated).",
            f"Add {counter.MIDDLEWARE_PATH!r} to MIDDLEWARE, after ReleaseHeaderMiddleware.",
        )
    ]


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _validate_options(where: str, smoke: Any) -> list[Problem]:
    if not isinstance(smoke, Mapping):
        return [_options_problem(where, f"'smoke' must be a dict, not {type(smoke).__name__}.")]
    problems = []
    unknown = sorted(set(smoke) - set(OPTION_DEFAULTS))
    if unknown:
        problems.append(
            Problem(
                "django_cd.E130",
                f"{where}: 'smoke' has unknown key(s) {', '.join(map(repr, unknown))}.",
                f"Remove them; the known keys are {', '.join(OPTION_DEFAULTS)}.",
            )
        )
    values = {**OPTION_DEFAULTS, **smoke}
    defaults = values["defaults"]
    if not isinstance(defaults, list | tuple) or not set(defaults) <= set(DEFAULT_CHECKS):
        problems.append(
            _options_problem(
                where,
                f"'smoke' 'defaults' must be a list of {', '.join(DEFAULT_CHECKS)}, "
                f"not {defaults!r}.",
            )
        )
    for key in ("grace_seconds", "timeout"):
        value = values[key]
        if not (_positive(value) or (key == "grace_seconds" and value == 0)):
            problems.append(
                _options_problem(
                    where, f"'smoke' {key!r} must be a number of seconds, not {value!r}."
                )
            )
    for key in ("login_path", "health_path"):
        if not (isinstance(values[key], str) and values[key].startswith("/")):
            problems.append(
                _options_problem(where, f"'smoke' {key!r} must be a path starting with '/'.")
            )
    for key in ("user_variable", "password_variable"):
        if not (isinstance(values[key], str) and VARIABLE_RE.match(values[key])):
            problems.append(
                _options_problem(where, f"'smoke' {key!r} must name an environment variable.")
            )
    statuses = values["url_status"]
    if statuses is not None and not (
        isinstance(statuses, list | tuple)
        and statuses
        and all(
            isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
        )
    ):
        problems.append(
            _options_problem(
                where,
                f"'smoke' 'url_status' must be None or a list of HTTP statuses, not {statuses!r}.",
            )
        )
    return problems


def _options_problem(where: str, message: str) -> Problem:
    return Problem(
        "django_cd.E131",
        f"{where}: {message}",
        "docs/smoketest.md lists the 'smoke' options with their defaults.",
    )


def _validate_checks(where: str, entries: Any) -> list[Problem]:
    if not isinstance(entries, list | tuple):
        return []  # E006, reported by conf
    problems = []
    names: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            names.append(entry)
        if not isinstance(entry, Mapping):
            continue  # dotted paths and callables: conf (E073, E074)
        label = f"{where}: smoke check {entry.get('name', entry.get('path', '?'))!r}"
        unknown = sorted(set(entry) - CHECK_KEYS)
        if unknown or "path" not in entry:
            problems.append(
                Problem(
                    "django_cd.E132",
                    f"{label} "
                    + (
                        f"has unknown key(s) {', '.join(map(repr, unknown))}."
                        if unknown
                        else "has no 'path'."
                    ),
                    "A declared check is a dict with 'path' and any of "
                    f"{', '.join(sorted(CHECK_KEYS - {'path'}))}.",
                )
            )
            continue
        problems += _check_values(label, entry)
        names.append(str(entry.get("name", entry["path"])))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(
            Problem(
                "django_cd.E134",
                f"{where}: smoke check name(s) {', '.join(map(repr, repeated))} used twice.",
                "Give each check its own 'name': results are reported by name.",
            )
        )
    return problems


def _check_values(label: str, entry: Mapping[str, Any]) -> list[Problem]:
    wrong = []
    if not (isinstance(entry["path"], str) and entry["path"].startswith("/")):
        wrong.append("'path' must start with '/'")
    if "name" in entry and not (isinstance(entry["name"], str) and entry["name"]):
        wrong.append("'name' must be a non-empty string")
    if str(entry.get("method", "GET")).upper() not in METHODS:
        wrong.append(f"'method' must be one of {', '.join(METHODS)}")
    status = entry.get("status", 200)
    if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
        wrong.append("'status' must be an HTTP status such as 200")
    for key in ("contains", "not_contains"):
        value = entry.get(key, ())
        if not (
            isinstance(value, str)
            or (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value))
        ):
            wrong.append(f"{key!r} must be a string or a list of strings")
    for key in ("max_seconds", "warn_seconds"):
        if key in entry and not _positive(entry[key]):
            wrong.append(f"{key!r} must be a positive number of seconds")
    for key in ("login", "json", "release"):
        if key in entry and not isinstance(entry[key], bool):
            wrong.append(f"{key!r} must be True or False")
    if not wrong:
        return []
    return [
        Problem(
            "django_cd.E133",
            f"{label}: {'; '.join(wrong)}.",
            "docs/smoketest.md shows a declared check with every key.",
        )
    ]


def _validate_watch(where: str, watch: Any) -> list[Problem]:
    if not isinstance(watch, Mapping) or set(watch) - set(WATCH_DEFAULTS):
        return [
            Problem(
                "django_cd.E135",
                f"{where}: 'watch' must be a dict of {', '.join(WATCH_DEFAULTS)}, not {watch!r}.",
                "E.g. 'watch': {'seconds': 60, 'max_5xx': 0}.",
            )
        ]
    values = {**WATCH_DEFAULTS, **watch}
    wrong = []
    if not (_positive(values["seconds"]) or values["seconds"] == 0):
        wrong.append("'seconds' must be a number of seconds (0 turns the watch off)")
    max_5xx = values["max_5xx"]
    if not (isinstance(max_5xx, int) and not isinstance(max_5xx, bool) and max_5xx >= 0):
        wrong.append("'max_5xx' must be a whole number of at least 0")
    if not _positive(values["interval"]):
        wrong.append("'interval' must be a positive number of seconds")
    if not wrong:
        return []
    return [
        Problem(
            "django_cd.E136",
            f"{where}: 'watch': {'; '.join(wrong)}.",
            "E.g. 'watch': {'seconds': 60, 'max_5xx': 0, 'interval': 2}.",
        )
    ]
