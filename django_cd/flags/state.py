"""A flag's state as JSON-able data, read from and written to django-waffle's tables.

One shape for every flag, switch and sample::

    {"name": "new_checkout", "type": "flag", "status": "selective", "state": "conditional",
     "conditions": [{"kind": "percent", "value": 10.0, "exclude": false}],
     "on_after": null, "off_after": "2026-12-01T00:00:00+00:00"}

``status`` is gargoyle's (disabled, selective, global, inherit); ``state`` is what
``flags list`` prints (off, conditional, on). Waffle's own per-flag fields
(staff, superusers, authenticated, users, groups, percent) are read as
conditions, so a flag made in waffle's admin evaluates the same here; a write
through django-cd keeps every condition in :class:`~django_cd.models.FlagRule`
and clears waffle's copies, so nothing is stored twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from waffle import get_waffle_flag_model, get_waffle_sample_model, get_waffle_switch_model

from django_cd.flags import conditions as cond
from django_cd.flags.errors import FlagError
from django_cd.models import FlagRule

STATUSES = ("disabled", "selective", "global", "inherit")
STATE_OF = {
    "disabled": "off",
    "global": "on",
    "selective": "conditional",
    "inherit": "conditional",
}
TYPES = ("flag", "switch", "sample")
KEYS = ("name", "type", "status", "state", "conditions", "on_after", "off_after")
NAME_MAX = 100


def read_all() -> list[dict[str, Any]]:
    """Every flag, switch and sample in the database, by type then name."""
    rules = {rule.name: rule for rule in FlagRule.objects.all()}
    flag_model: Any = get_waffle_flag_model()  # swappable: users and groups are on the default
    flags = flag_model.objects.prefetch_related("users", "groups").order_by("name")
    states = [_flag_state(flag, rules.get(flag.name)) for flag in flags]
    states += [_switch_state(s) for s in get_waffle_switch_model().objects.order_by("name")]
    states += [_sample_state(s) for s in get_waffle_sample_model().objects.order_by("name")]
    return states


def read(name: str) -> dict[str, Any] | None:
    """The state of ``name`` (a flag, else a switch, else a sample), or None."""
    flag = get_waffle_flag_model().objects.filter(name=name).first()
    if flag is not None:
        return _flag_state(flag, FlagRule.objects.filter(name=name).first())
    switch = get_waffle_switch_model().objects.filter(name=name).first()
    if switch is not None:
        return _switch_state(switch)
    sample = get_waffle_sample_model().objects.filter(name=name).first()
    return _sample_state(sample) if sample is not None else None


def make(
    name: str, type_: str, status: str, conditions: list[Any], **schedule: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "status": status,
        "state": STATE_OF[status],
        "conditions": conditions,
        "on_after": schedule.get("on_after"),
        "off_after": schedule.get("off_after"),
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _flag_state(flag: Any, rule: FlagRule | None) -> dict[str, Any]:
    if flag.everyone is True:
        status = "global"
    elif flag.everyone is False:
        status = "disabled"
    else:
        status = "inherit" if rule is not None and rule.inherit else "selective"
    conditions = _waffle_conditions(flag) + list(rule.conditions if rule else [])
    return make(
        flag.name,
        "flag",
        status,
        conditions,
        on_after=_iso(rule.on_after) if rule else None,
        off_after=_iso(rule.off_after) if rule else None,
    )


def _waffle_conditions(flag: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    attributes = [
        a
        for a, on in (
            ("superuser", flag.superusers),
            ("staff", flag.staff),
            ("authenticated", flag.authenticated),
        )
        if on
    ]
    if attributes:
        found.append({"kind": "user", "value": attributes, "exclude": False})
    users = sorted(user.get_username() for user in flag.users.all())
    if users:
        found.append({"kind": "username", "value": users, "exclude": False})
    groups = sorted(group.name for group in flag.groups.all())
    if groups:
        found.append({"kind": "group", "value": groups, "exclude": False})
    if flag.percent is not None:
        found.append({"kind": "percent", "value": float(flag.percent), "exclude": False})
    return found


def _switch_state(switch: Any) -> dict[str, Any]:
    return make(switch.name, "switch", "global" if switch.active else "disabled", [])


def _sample_state(sample: Any) -> dict[str, Any]:
    share = float(sample.percent)
    status = "disabled" if share == 0 else "global" if share == 100 else "selective"
    return make(
        sample.name, "sample", status, [{"kind": "percent", "value": share, "exclude": False}]
    )


# Validation ---------------------------------------------------------------


def validate(raw: Any) -> dict[str, Any]:
    """A state in its normal form, or ``FlagError`` naming the flag and the problem."""
    if not isinstance(raw, Mapping):
        raise FlagError(f"A flag state must be an object, not {type(raw).__name__}.")
    name = raw.get("name")
    if not isinstance(name, str) or not name or len(name) > NAME_MAX:
        raise FlagError(f"A flag state needs a 'name' of 1 to {NAME_MAX} characters.")
    try:
        return _validate_named(name, raw)
    except FlagError as error:
        raise FlagError(f"Flag {name!r}: {error}") from None


def _validate_named(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise FlagError(f"unknown key(s) {', '.join(sorted(unknown))}.")
    type_, status = raw.get("type", "flag"), raw.get("status")
    if type_ not in TYPES:
        raise FlagError(f"type {type_!r} is not one of {', '.join(TYPES)}.")
    if status not in STATUSES:
        raise FlagError(f"status {status!r} is not one of {', '.join(STATUSES)}.")
    raw_conditions = raw.get("conditions", [])
    if not isinstance(raw_conditions, list):
        raise FlagError("'conditions' must be a list.")
    conditions = [cond.validate(c) for c in raw_conditions]
    on_after, off_after = parse_time(raw.get("on_after")), parse_time(raw.get("off_after"))
    if on_after and off_after and off_after <= on_after:
        raise FlagError(
            f"the schedule ends ({off_after.isoformat()}) before it starts "
            f"({on_after.isoformat()}); give an off time after the on time."
        )
    if status == "inherit" and ":" not in name:
        raise FlagError("only a 'parent:child' flag can inherit; name it parent:child.")
    if type_ != "flag":
        _validate_waffle_kind(type_, status, conditions, on_after or off_after)
    return make(
        name, type_, status, conditions, on_after=_iso(on_after), off_after=_iso(off_after)
    )


def _validate_waffle_kind(
    type_: str, status: str, conditions: list[dict[str, Any]], scheduled: datetime | None
) -> None:
    if scheduled:
        raise FlagError(f"a {type_} has no schedule; use a flag.")
    if type_ == "switch" and (status not in ("global", "disabled") or conditions):
        raise FlagError("a switch is only on (global) or off (disabled), without conditions.")
    if type_ == "sample" and (len(conditions) != 1 or conditions[0]["kind"] != "percent"):
        raise FlagError("a sample has exactly one percent condition.")


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO text (naive means UTC), None from None or ''."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise FlagError(f"{value!r} is not a time; write ISO 8601, e.g. 2026-12-01T09:00Z.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FlagError(
            f"{value!r} is not a time; write ISO 8601, e.g. 2026-12-01T09:00Z."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Writing ------------------------------------------------------------------


def write(state: Mapping[str, Any]) -> None:
    """Store a validated state, creating the flag, switch or sample when missing."""
    with transaction.atomic():
        if state["type"] == "switch":
            switch, _ = get_waffle_switch_model().objects.get_or_create(name=state["name"])
            switch.active = state["status"] == "global"
            switch.save()
        elif state["type"] == "sample":
            sample, _ = get_waffle_sample_model().objects.get_or_create(
                name=state["name"], defaults={"percent": Decimal(0)}
            )
            sample.percent = Decimal(str(state["conditions"][0]["value"]))
            sample.save()
        else:
            _write_flag(state)


def _write_flag(state: Mapping[str, Any]) -> None:
    flag, _ = get_waffle_flag_model().objects.get_or_create(name=state["name"])
    flag.everyone = {"global": True, "disabled": False}.get(state["status"])
    flag.superusers = flag.staff = flag.authenticated = flag.testing = False
    flag.percent = None
    flag.save()
    if flag.users.exists():
        flag.users.clear()
    if flag.groups.exists():
        flag.groups.clear()
    FlagRule.objects.update_or_create(
        name=state["name"],
        defaults={
            "inherit": state["status"] == "inherit",
            "conditions": state["conditions"],
            "on_after": parse_time(state["on_after"]),
            "off_after": parse_time(state["off_after"]),
        },
    )
