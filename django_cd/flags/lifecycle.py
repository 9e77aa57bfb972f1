"""Declared flags against the database: reconcile, stale flags, the list the panel shows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from django_cd.flags import changes
from django_cd.flags import state as flag_state
from django_cd.flags.declarations import declared
from django_cd.flags.transfer import describe_state


def reconcile(*, by: str = "", reason: str = "declared in code") -> dict[str, list[str]]:
    """Create every declared flag that the database lacks, off; name the undeclared ones."""
    in_code = declared()
    existing = {s["name"] for s in flag_state.read_all()}
    created = sorted(set(in_code) - existing)
    with transaction.atomic():
        for name in created:
            off = flag_state.make(name, "flag", "disabled", [])
            changes.apply(off, by=by or changes.default_actor(), reason=reason, source="reconcile")
    return {
        "created": created,
        "undeclared": sorted(existing - set(in_code)),
        "declared": sorted(in_code),
    }


def stale(today: dt.date | None = None) -> list[dict[str, Any]]:
    """Declared flags past their expiry date: code to clean up."""
    return [
        {**declaration.as_dict(), "why": f"expired on {declaration.expires}"}
        for declaration in declared().values()
        if declaration.expired(today)
    ]


def listing() -> list[dict[str, Any]]:
    """Every flag in the database and every declared one, with its declaration and last change."""
    in_code = declared()
    last = changes.last_changes()
    states = {s["name"]: s for s in flag_state.read_all()}
    for name in in_code:
        states.setdefault(name, {**flag_state.make(name, "flag", "disabled", []), "missing": True})
    rows = []
    for name, found in sorted(states.items()):
        declaration = in_code.get(name)
        change = last.get(name)
        rows.append(
            {
                **found,
                "words": describe_state(found),
                "declared": declaration is not None,
                "declaration": declaration.as_dict() if declaration else None,
                "stale": bool(declaration and declaration.expired()),
                "changed_by": change.by if change else None,
                "changed_at": change.at.isoformat() if change else None,
            }
        )
    return rows
