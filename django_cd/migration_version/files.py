"""Reading and writing ``migrations/version.txt``: one migration name and a newline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from django_cd.migration_version.errors import MigrationVersionError

MARKER_PREFIXES = ("<<<<<<<", "|||||||", "=======", ">>>>>>>")
# Migration names are Python module names; a longer "name" is not one.
MAX_BYTES = 4096


class Status(Enum):
    OK = "ok"
    MISSING = "missing"
    CONFLICT = "conflict"
    NOT_ONE_NAME = "not-one-name"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class VersionFile:
    """What one ``version.txt`` holds: its status, the name (when OK) and its lines."""

    path: Path
    status: Status
    name: str | None = None
    lines: tuple[str, ...] = ()
    detail: str = ""


def read_version(path: Path) -> VersionFile:
    """Read ``path`` without ever raising: problems are reported in the status."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return VersionFile(path, Status.MISSING)
    except OSError as error:
        return VersionFile(path, Status.UNREADABLE, detail=error.strerror or type(error).__name__)
    if len(raw) > MAX_BYTES or b"\0" in raw:
        return VersionFile(path, Status.UNREADABLE, detail="it is binary, not text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return VersionFile(path, Status.UNREADABLE, detail="it is not UTF-8 text")
    lines = tuple(line.strip() for line in text.splitlines() if line.strip())
    if any(line.startswith(MARKER_PREFIXES) for line in lines):
        return VersionFile(path, Status.CONFLICT, lines=lines)
    if len(lines) != 1:
        return VersionFile(path, Status.NOT_ONE_NAME, lines=lines)
    return VersionFile(path, Status.OK, name=lines[0], lines=lines)


def write_version(path: Path, name: str) -> None:
    """Write ``name`` and a newline, replacing the file atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{name}\n", encoding="utf-8")
    os.replace(temporary, path)


@dataclass(frozen=True)
class Conflict:
    """The two sides git left in a conflicted ``version.txt``."""

    current: str
    incoming: str


def parse_conflict(version: VersionFile) -> Conflict:
    """The current (HEAD) and incoming names of a conflicted file, or an error."""
    sides: dict[str, list[str]] = {"current": [], "base": [], "incoming": []}
    side: str | None = None
    for line in version.lines:
        if line.startswith("<<<<<<<"):
            side = "current"
        elif line.startswith("|||||||"):
            side = "base"  # diff3 / zdiff3 style: the common ancestor, not needed
        elif line.startswith("======="):
            side = "incoming"
        elif line.startswith(">>>>>>>"):
            side = None
        elif side is None:
            raise MigrationVersionError(
                f"{version.path} has {line!r} outside the conflict markers. "
                "Edit the file so that it holds only git's conflict, then run the rebase again."
            )
        else:
            sides[side].append(line)
    names = {}
    for key in ("current", "incoming"):
        if len(sides[key]) != 1:
            raise MigrationVersionError(
                f"The {key} side of the conflict in {version.path} holds "
                f"{len(sides[key])} lines, not one migration name. "
                "Resolve it by hand: write the name of the app's leaf migration."
            )
        names[key] = sides[key][0]
    return Conflict(current=names["current"], incoming=names["incoming"])
