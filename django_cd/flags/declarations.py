"""Flags declared in code (``DJANGO_CD["FLAGS"]``): reconcile with the database, find stale ones.

::

    DJANGO_CD = {"FLAGS": {
        "new_checkout": {"description": "One-page checkout", "owner": "shop-team",
                         "kind": "release", "expires": "2026-12-31"},
    }}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from django_cd import conf

KINDS = ("release", "experiment", "ops", "permission")
FIELDS = ("description", "owner", "kind", "expires")


@dataclass(frozen=True)
class Declaration:
    """One flag as the code declares it."""

    name: str
    description: str = ""
    owner: str = ""
    kind: str = "release"
    expires: dt.date | None = None

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and self.expires < (today or timezone.localdate())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "kind": self.kind,
            "expires": self.expires.isoformat() if self.expires else None,
        }


def problems(raw: Any) -> list[tuple[str, str]]:
    """(flag name or '', message) for each thing wrong with ``DJANGO_CD["FLAGS"]``."""
    if not isinstance(raw, Mapping):
        return [("", f"DJANGO_CD['FLAGS'] must be a dict of name -> declaration, not {raw!r}.")]
    found = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name or len(name) > 100:
            found.append((str(name), "a flag name must be a string of 1 to 100 characters."))
        elif not isinstance(spec, Mapping):
            found.append((name, "the declaration must be a dict (description, owner, ...)."))
        else:
            found += [(name, message) for message in _spec_problems(spec)]
    return found


def _spec_problems(spec: Mapping[str, Any]) -> list[str]:
    found = [
        f"unknown key {key!r}; the keys are {', '.join(FIELDS)}."
        for key in spec
        if key not in FIELDS
    ]
    if spec.get("kind", "release") not in KINDS:
        found.append(f"kind {spec.get('kind')!r} is not one of {', '.join(KINDS)}.")
    for key in ("description", "owner"):
        if not isinstance(spec.get(key, ""), str):
            found.append(f"{key} must be a string.")
    expires = spec.get("expires")
    if expires is not None and _date(expires) is None:
        found.append(f"expires {expires!r} is not a date; write YYYY-MM-DD.")
    return found


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def declared() -> dict[str, Declaration]:
    """The valid declarations by name (the checks report the invalid ones)."""
    raw = conf.get_config().get("FLAGS")
    if not isinstance(raw, Mapping):
        return {}
    bad = {name for name, _ in problems(raw)}
    return {
        name: Declaration(
            name=name,
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            kind=spec.get("kind", "release"),
            expires=_date(spec.get("expires")),
        )
        for name, spec in raw.items()
        if name not in bad
    }
