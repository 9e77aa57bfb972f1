"""Every change of a flag goes through :func:`apply`: validated, stored, audited, atomic.

The audit entry (:class:`~django_cd.models.FlagChange`) records who, when, the
old and new state, the reason, where the change came from (admin, command,
import, rollback, reconcile) and the release that was current.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from django_cd.flags import state as flag_state
from django_cd.flags.conditions import percent as parse_percent
from django_cd.flags.errors import FlagError, UnknownFlag
from django_cd.middleware import release_id
from django_cd.models import FlagChange

SOURCES = ("admin", "command", "import", "rollback", "reconcile")

Update = Callable[[dict[str, Any]], dict[str, Any]]


def default_actor() -> str:
    """Who runs a command: the OS user (commands take ``--by`` to say more)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def known_names() -> list[str]:
    from django_cd.flags.declarations import declared

    return [s["name"] for s in flag_state.read_all()] + list(declared())


def require(name: str) -> dict[str, Any]:
    """The state of a flag (a declared one not yet in the database is off),
    or ``UnknownFlag`` with the closest names."""
    from django_cd.flags.declarations import declared

    found = flag_state.read(name)
    if found is None and name in declared():
        return flag_state.make(name, "flag", "disabled", [])
    if found is None:
        raise UnknownFlag(name, known_names())
    return found


def apply(
    new: Mapping[str, Any], *, by: str, reason: str = "", source: str = "command"
) -> FlagChange | None:
    """Store ``new`` (creating the flag if needed) and audit it; None when nothing changed."""
    if source not in SOURCES:
        raise FlagError(f"Unknown change source {source!r}; use one of {', '.join(SOURCES)}.")
    valid = flag_state.validate(new)
    with transaction.atomic():
        old = flag_state.read(valid["name"])
        if old == valid:
            return None
        flag_state.write(valid)
        return FlagChange.objects.create(
            name=valid["name"],
            at=timezone.now(),
            by=by or default_actor(),
            source=source,
            old=old,
            new=valid,
            reason=reason,
            release=release_id() or "",
        )


def update(
    name: str, change: Update, *, by: str, reason: str = "", source: str = "command"
) -> FlagChange | None:
    """Apply ``change`` to the current state of an existing flag."""
    with transaction.atomic():
        current = require(name)
        return apply(change(dict(current)), by=by, reason=reason, source=source)


def turn_on(name: str, **audit: Any) -> FlagChange | None:
    """On for everyone (gargoyle's "global")."""
    return update(name, lambda s: {**s, "status": "global"}, **audit)


def turn_off(name: str, **audit: Any) -> FlagChange | None:
    """Off for everyone (gargoyle's "disabled"); the conditions are kept for next time."""
    return update(name, lambda s: {**s, "status": "disabled"}, **audit)


def set_percent(name: str, share: Any, **audit: Any) -> FlagChange | None:
    """On for ``share`` % of users (sticky per user), replacing any percent condition."""
    value = parse_percent(share)

    def change(s: dict[str, Any]) -> dict[str, Any]:
        if s["type"] == "sample":
            return {
                **s,
                "conditions": [{"kind": "percent", "value": value, "exclude": False}],
                "status": "selective",
            }
        if s["type"] == "switch":
            raise FlagError(f"{name!r} is a switch: it is on or off, without a percentage.")
        kept = [c for c in s["conditions"] if c["kind"] != "percent"]
        condition = {"kind": "percent", "value": value, "exclude": False}
        return {**s, "status": "selective", "conditions": [*kept, condition]}

    return update(name, change, **audit)


def set_conditions(
    name: str,
    conditions: Iterable[Mapping[str, Any]],
    *,
    on_after: Any = None,
    off_after: Any = None,
    inherit: bool = False,
    **audit: Any,
) -> FlagChange | None:
    """Replace a flag's conditions and schedule; it becomes selective (or inherit)."""
    status = "inherit" if inherit else "selective"
    new_conditions = list(conditions)
    return update(
        name,
        lambda s: {
            **s,
            "status": status,
            "conditions": new_conditions,
            "on_after": on_after,
            "off_after": off_after,
        },
        **audit,
    )


def history(name: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The audit entries, newest first, as JSON-able dicts."""
    entries = FlagChange.objects.all()
    if name is not None:
        entries = entries.filter(name=name)
    return [as_dict(entry) for entry in entries[:limit]]


def as_dict(entry: FlagChange) -> dict[str, Any]:
    return {
        "name": entry.name,
        "at": entry.at.isoformat(),
        "by": entry.by,
        "source": entry.source,
        "old_state": entry.old["state"] if entry.old else None,
        "new_state": entry.new["state"] if entry.new else None,
        "old": entry.old,
        "new": entry.new,
        "reason": entry.reason,
        "release": entry.release,
    }


def last_changes() -> dict[str, FlagChange]:
    """The latest audit entry of each flag (one query; ids grow with time)."""
    newest = FlagChange.objects.values("name").annotate(last=Max("id")).values("last")
    return {entry.name: entry for entry in FlagChange.objects.filter(id__in=newest)}
