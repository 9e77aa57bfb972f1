"""Conditions of a selective flag: what each kind matches, how it reads in words.

A condition is JSON-able data, ``{"kind": "ip", "value": ["10.0.0.0/8"], "exclude": false}``,
stored on :class:`django_cd.models.FlagRule` and carried by snapshots and exports.
:func:`validate` refuses a bad one with a message naming the fix; :func:`compile_condition`
turns a valid one into a predicate over a :class:`Context`, built once per snapshot.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from django_cd.flags.errors import FlagError

USER_ATTRIBUTES = ("staff", "superuser", "active", "authenticated")
LIST_KINDS = ("environment", "ip", "host", "user", "username", "email", "group")
KINDS = (*LIST_KINDS, "percent")
INTERNAL_IPS = "INTERNAL_IPS"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Context:
    """What a condition looks at, read from the request once per check."""

    environment: str | None = None
    ip: str | None = None
    host: str | None = None
    user: Any = None
    _groups: set[str] | None = field(default=None, repr=False)

    def groups(self) -> set[str]:
        # Read lazily: most flags never ask, and it is a query.
        if self._groups is None:
            user = self.user
            if user is None or not getattr(user, "is_authenticated", False):
                self._groups = set()
            else:
                self._groups = set(user.groups.values_list("name", flat=True))
        return self._groups


Predicate = Callable[[Context], bool]


def validate(raw: Any) -> dict[str, Any]:
    """One condition in its stored form, or ``FlagError`` saying what is wrong."""
    if not isinstance(raw, Mapping):
        raise FlagError(f"A condition must be an object, not {type(raw).__name__}.")
    unknown = set(raw) - {"kind", "value", "exclude"}
    if unknown:
        raise FlagError(f"A condition has unknown key(s) {', '.join(sorted(unknown))}.")
    kind, value, exclude = raw.get("kind"), raw.get("value"), raw.get("exclude", False)
    if kind not in KINDS:
        raise FlagError(f"Unknown condition kind {kind!r}. Use one of {', '.join(KINDS)}.")
    if not isinstance(exclude, bool):
        raise FlagError(f"The 'exclude' of a {kind} condition must be true or false.")
    if kind == "percent":
        return {"kind": kind, "value": percent(value), "exclude": exclude}
    if not isinstance(value, list | tuple) or not value:
        raise FlagError(f"A {kind} condition needs a non-empty list of values.")
    values = [str(v).strip() for v in value]
    if not all(values):
        raise FlagError(f"A {kind} condition has an empty value.")
    if kind == "ip":
        for item in values:
            if item != INTERNAL_IPS:
                network(item)
    if kind == "user":
        bad = [v for v in values if v not in USER_ATTRIBUTES]
        if bad:
            raise FlagError(
                f"Unknown user attribute(s) {', '.join(bad)}. Use {', '.join(USER_ATTRIBUTES)}."
            )
    return {"kind": kind, "value": values, "exclude": exclude}


def percent(value: Any) -> float:
    """A percentage in 0-100, or ``FlagError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FlagError(f"Percent {value} is not a number; give 0 to 100.") from None
    if isinstance(value, bool) or not 0 <= number <= 100:
        raise FlagError(f"Percent {value} is outside 0-100; give 0 to 100.")
    return number


def network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise FlagError(
            f"{text!r} is not an IP network; write it as CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32, "
            f"or {INTERNAL_IPS}."
        ) from None


def bucket(flag: str, user_id: Any) -> float:
    """Where a user falls for a flag, in [0, 100): stable, and different per flag.

    A user is in a percentage when their bucket is below it, so raising the
    percentage only adds users; hashing the flag's name in keeps one flag's
    10 % from being every flag's 10 %.
    """
    digest = hashlib.sha256(f"{flag}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10000 / 100


def compile_condition(flag: str, condition: Mapping[str, Any]) -> Predicate:
    """A predicate for one validated condition of ``flag``."""
    kind, value = condition["kind"], condition["value"]
    if kind == "percent":
        share = float(value)

        def in_percent(ctx: Context) -> bool:
            user = ctx.user
            if user is None or not getattr(user, "is_authenticated", False):
                return False
            return bucket(flag, user.pk) < share

        return in_percent
    if kind == "environment":
        names = frozenset(value)
        return lambda ctx: ctx.environment in names
    if kind == "ip":
        return _ip_predicate(value)
    if kind == "host":
        hosts = frozenset(v.lower() for v in value)
        return lambda ctx: (ctx.host or "").lower() in hosts
    if kind == "user":
        return _user_predicate(value)
    if kind == "username":
        names = frozenset(value)
        return lambda ctx: _user_field(ctx, "get_username") in names
    if kind == "email":
        emails = frozenset(v.lower() for v in value)
        return lambda ctx: (_user_field(ctx, "email") or "").lower() in emails
    groups = frozenset(value)
    return lambda ctx: bool(groups & ctx.groups())


def _ip_predicate(values: list[str]) -> Predicate:
    networks: list[Network] = []
    for item in values:
        if item == INTERNAL_IPS:
            networks += [network(ip) for ip in getattr(settings, "INTERNAL_IPS", [])]
        else:
            networks.append(network(item))

    def matches(ctx: Context) -> bool:
        if not ctx.ip:
            return False
        try:
            address = ipaddress.ip_address(ctx.ip)
        except ValueError:
            return False
        return any(address in net for net in networks if net.version == address.version)

    return matches


def _user_predicate(attributes: list[str]) -> Predicate:
    fields = [f"is_{name}" for name in attributes]

    def matches(ctx: Context) -> bool:
        user = ctx.user
        return user is not None and any(getattr(user, name, False) for name in fields)

    return matches


def _user_field(ctx: Context, name: str) -> Any:
    user = ctx.user
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    value = getattr(user, name, None)
    return value() if callable(value) else value


def describe(condition: Mapping[str, Any]) -> str:
    """A condition in words, as the panel and ``flags show`` print it."""
    kind, value = condition["kind"], condition["value"]
    if kind == "percent":
        text = f"{float(value):g}% of users"
    elif kind == "user":
        text = "user is " + " or ".join(value)
    else:
        label = {
            "environment": "environment is",
            "ip": "IP in",
            "host": "host is",
            "username": "username is",
            "email": "email is",
            "group": "user in group",
        }[kind]
        text = f"{label} {' or '.join(value)}"
    return f"not when {text}" if condition.get("exclude") else text
