"""Flag states that travel: snapshots for releases, export and import between environments.

A snapshot is ``{"format": 1, "flags": [state, ...]}`` (states as in
:mod:`django_cd.flags.state`). Importing one is a diff first: only the flags
it names and whose state differs change; flags it does not name are left
alone. A file of the wrong shape is refused whole, before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from django_cd.flags import changes
from django_cd.flags import state as flag_state
from django_cd.flags.conditions import describe
from django_cd.flags.errors import FlagError

FORMAT = 1


def snapshot() -> dict[str, Any]:
    """Every flag's state, read from the database now: JSON-able, for ``release.json``."""
    return {"format": FORMAT, "flags": flag_state.read_all()}


def load(data: Any) -> list[dict[str, Any]]:
    """The validated states of a snapshot, or ``FlagError`` naming every problem."""
    if not isinstance(data, Mapping) or not isinstance(data.get("flags"), list):
        raise FlagError(
            "A flags file must be a JSON object with a 'flags' list, "
            "as `manage.py flags export --json` writes it."
        )
    if data.get("format", FORMAT) != FORMAT:
        raise FlagError(f"Flags file format {data.get('format')!r} is not {FORMAT}.")
    states, problems, seen = [], [], set()
    for index, raw in enumerate(data["flags"]):
        try:
            valid = flag_state.validate(raw)
        except FlagError as error:
            problems.append(f"flags[{index}]: {error}")
            continue
        if valid["name"] in seen:
            problems.append(f"flags[{index}]: {valid['name']!r} is listed twice.")
        seen.add(valid["name"])
        states.append(valid)
    if problems:
        raise FlagError("The flags file was refused, nothing changed:\n  " + "\n  ".join(problems))
    return states


def read_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise FlagError(f"Cannot read {path}: {error.strerror}.") from None
    return load_text(text, path)


def load_text(text: str, where: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise FlagError(f"{where} is not JSON ({error}); nothing changed.") from None
    return load(data)


def diff(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{"name", "old", "new"}`` for each state that differs from the database."""
    current = {s["name"]: s for s in flag_state.read_all()}
    return [
        {"name": s["name"], "old": current.get(s["name"]), "new": s}
        for s in states
        if current.get(s["name"]) != s
    ]


def describe_state(state: Mapping[str, Any] | None) -> str:
    """A state in one line of words: ``conditional (environment is staging; 10% of users)``."""
    if state is None:
        return "absent"
    words = [describe(c) for c in state["conditions"]] if state["status"] == "selective" else []
    if state["status"] == "inherit":
        words.append("inherits from " + state["name"].rsplit(":", 1)[0])
    if state["on_after"]:
        words.append(f"on after {state['on_after']}")
    if state["off_after"]:
        words.append(f"off after {state['off_after']}")
    return str(state["state"]) + (f" ({'; '.join(words)})" if words else "")


def diff_lines(entries: list[dict[str, Any]]) -> list[str]:
    return [
        f"{e['name']}: {describe_state(e['old'])} -> {describe_state(e['new'])}" for e in entries
    ]


def apply_states(
    states: list[dict[str, Any]], *, by: str, reason: str, source: str
) -> list[dict[str, Any]]:
    """Write every differing state in one transaction (all or nothing); the diff applied."""
    entries = diff(states)
    with transaction.atomic():
        for entry in entries:
            changes.apply(entry["new"], by=by, reason=reason, source=source)
    return entries


def restore(snapshot: Any, who: str, reason: str) -> list[dict[str, Any]]:
    """Put back the flag states of ``snapshot`` (a rollback), audited; the diff applied."""
    return apply_states(load(snapshot), by=who, reason=reason, source="rollback")
