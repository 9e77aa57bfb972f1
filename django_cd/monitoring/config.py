"""Where deploy results go: ``notifications`` per environment, ``SENTRY`` and ``STATSD``.

::

    "notifications": [
        {"type": "mail", "to": ["ops@example.com"], "on": ["failure"]},
        {"type": "webhook", "url_variable": "SLACK_WEBHOOK_URL"},   # on success and failure
    ],
    DJANGO_CD["SENTRY"] = {"organization": "acme", "project": "notes"}
    DJANGO_CD["STATSD"] = {"host": "127.0.0.1", "port": 8125, "prefix": "django_cd"}

Validated by :func:`validate` (ids E137-E139, docs/checks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django_cd.conf import Problem

OUTCOMES = ("success", "failure")
NOTIFIER_KEYS: dict[str, frozenset[str]] = {
    "mail": frozenset({"to", "on"}),
    "webhook": frozenset({"url", "url_variable", "on"}),
}
SENTRY_DEFAULTS: dict[str, Any] = {
    "organization": None,
    "project": None,
    "api_url": "https://sentry.io/api/0/",
    "token_variable": "SENTRY_AUTH_TOKEN",
    "dsn_variable": "SENTRY_DSN",
    "timeout": 10,
}
STATSD_DEFAULTS: dict[str, Any] = {"host": "127.0.0.1", "port": 8125, "prefix": "django_cd"}


def sentry(config: Mapping[str, Any]) -> dict[str, Any] | None:
    value = config.get("SENTRY")
    return {**SENTRY_DEFAULTS, **value} if isinstance(value, Mapping) else None


def statsd(config: Mapping[str, Any]) -> dict[str, Any] | None:
    value = config.get("STATSD")
    return {**STATSD_DEFAULTS, **value} if isinstance(value, Mapping) else None


def validate(config: Mapping[str, Any]) -> list[Problem]:
    problems = _validate_sentry(config.get("SENTRY")) + _validate_statsd(config.get("STATSD"))
    envs = config.get("ENVIRONMENTS")
    if isinstance(envs, Mapping):
        for name, env in envs.items():
            if isinstance(env, Mapping) and isinstance(env.get("notifications"), list | tuple):
                for entry in env["notifications"]:
                    problems += _validate_notifier(f"Environment {name!r}", entry)
    return problems


def _validate_notifier(where: str, entry: Any) -> list[Problem]:
    wrong = []
    kind = entry.get("type") if isinstance(entry, Mapping) else None
    if kind not in NOTIFIER_KEYS:
        wrong.append(f"each must be a dict whose 'type' is {' or '.join(NOTIFIER_KEYS)}")
    else:
        assert isinstance(entry, Mapping)
        unknown = sorted(set(entry) - NOTIFIER_KEYS[kind] - {"type"})
        if unknown:
            wrong.append(f"{kind} does not take {', '.join(map(repr, unknown))}")
        on = entry.get("on", list(OUTCOMES))
        if not (isinstance(on, list | tuple) and on and set(on) <= set(OUTCOMES)):
            wrong.append("'on' must list 'success' and/or 'failure'")
        if kind == "mail":
            to = entry.get("to")
            if not (isinstance(to, list | tuple) and to and all("@" in str(a) for a in to)):
                wrong.append("mail needs 'to': a list of addresses")
        if kind == "webhook":
            url, variable = entry.get("url"), entry.get("url_variable")
            if (url is None) == (variable is None):
                wrong.append("webhook needs one of 'url' or 'url_variable'")
            elif url is not None and not str(url).startswith(("http://", "https://")):
                wrong.append("webhook 'url' must be an http(s) URL")
    if not wrong:
        return []
    return [
        Problem(
            "django_cd.E137",
            f"{where}: 'notifications': {'; '.join(wrong)}.",
            "E.g. {'type': 'mail', 'to': ['ops@example.com']} or {'type': 'webhook', "
            "'url_variable': 'SLACK_WEBHOOK_URL'} (docs/monitoring.md).",
        )
    ]


def _validate_sentry(value: Any) -> list[Problem]:
    def wrong(value: Mapping[str, Any]) -> list[str]:
        found = [
            f"{key!r} must be the slug from Sentry"
            for key in ("organization", "project")
            if not (isinstance(value.get(key), str) and value[key])
        ]
        api = value.get("api_url", SENTRY_DEFAULTS["api_url"])
        if not (isinstance(api, str) and api.startswith(("http://", "https://"))):
            found.append("'api_url' must be an http(s) URL")
        return found

    return _validate_section(
        "SENTRY",
        value,
        SENTRY_DEFAULTS,
        wrong,
        "django_cd.E138",
        "E.g. {'organization': 'acme', 'project': 'notes'}; the token is read from "
        "SENTRY_AUTH_TOKEN (docs/monitoring.md).",
    )


def _validate_statsd(value: Any) -> list[Problem]:
    def wrong(value: Mapping[str, Any]) -> list[str]:
        found = []
        port = value.get("port", 8125)
        if not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
            found.append("'port' must be a port number")
        for key in ("host", "prefix"):
            if not (isinstance(value.get(key, "x"), str) and value.get(key, "x")):
                found.append(f"{key!r} must be a non-empty string")
        return found

    return _validate_section(
        "STATSD",
        value,
        STATSD_DEFAULTS,
        wrong,
        "django_cd.E139",
        "E.g. {'host': '127.0.0.1', 'port': 8125, 'prefix': 'django_cd'}.",
    )


def _validate_section(
    name: str,
    value: Any,
    defaults: Mapping[str, Any],
    wrong_values: Callable[[Mapping[str, Any]], list[str]],
    check_id: str,
    hint: str,
) -> list[Problem]:
    """One problem listing what is wrong with ``DJANGO_CD[name]`` (None: not used)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        wrong = ["must be a dict or None"]
    else:
        unknown = sorted(set(value) - set(defaults))
        wrong = [f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []
        wrong += wrong_values(value)
    if not wrong:
        return []
    return [Problem(check_id, f"DJANGO_CD[{name!r}]: {'; '.join(wrong)}.", hint)]
