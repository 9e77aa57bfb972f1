"""Resolve a git conflict in ``version.txt`` by renumbering one side's migrations.

Two branches each added migrations to one app; git conflicts on the app's
``version.txt``. The whole chain of the side being renumbered (by default the
incoming one, below ``=======``) is moved after the other side's leaf: each
file gets the next free number, its dependency on the previous migration is
rewritten, references from other migrations follow, and ``version.txt``
names the new leaf. Everything is checked before the first byte is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import cache_from_source
from pathlib import Path
from typing import Literal

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from django_cd.migration_version.errors import MigrationVersionError
from django_cd.migration_version.files import (
    Conflict,
    Status,
    parse_conflict,
    read_version,
    write_version,
)
from django_cd.migration_version.firstparty import VersionedApp, require_app
from django_cd.migration_version.plan import require_database
from django_cd.migration_version.sourcefix import rename_references
from django_cd.migration_version.versions import disk_names, load_graph
from django_cd.project import is_site_package

Side = Literal["incoming", "current"]
NUMBERED = re.compile(r"^(?P<number>\d+)_(?P<rest>\w+)$")
Key = tuple[str, str]


@dataclass(frozen=True)
class Move:
    """One migration renumbered: its old and new name, and what it now depends on."""

    old: str
    new: str
    depends_on: str


@dataclass(frozen=True)
class RebaseResult:
    """What a rebase changed: the moves, the new leaf, other files rewritten."""

    app: VersionedApp
    kept: str
    leaf: str
    moves: list[Move] = field(default_factory=list)
    rewritten: list[Path] = field(default_factory=list)


def rebase(
    label: str, *, renumber: Side = "incoming", database: str = DEFAULT_DB_ALIAS
) -> RebaseResult:
    """Resolve the conflicted ``version.txt`` of app ``label`` into a linear history."""
    app = require_app(label)
    version = read_version(app.version_path)
    if version.status is Status.UNREADABLE:
        raise MigrationVersionError(
            f"{app.version_path} cannot be read ({version.detail}), so its conflict cannot be "
            f"resolved. Restore it from git (git checkout --merge {app.version_path.name}) "
            "and run the rebase again."
        )
    if version.status is not Status.CONFLICT:
        state = f"it names {version.name!r}" if version.name else version.status.value
        raise MigrationVersionError(
            f"{app.version_path} has no git conflict markers ({state}), so there is nothing "
            "to rebase. Run the rebase after a git merge or rebase conflicts on this file."
        )
    conflict = parse_conflict(version)
    keep, move = _sides(conflict, renumber)
    loader = load_graph()
    for side, name in (("current", conflict.current), ("incoming", conflict.incoming)):
        _require_migration(loader, app, side, name)
    chain = _chain(loader, label, keep, move)
    if not chain:
        # One side already contains the other: no renumbering, just the leaf.
        leaf = keep if (label, move) in loader.graph.forwards_plan((label, keep)) else move
        write_version(app.version_path, leaf)
        return RebaseResult(app, kept=keep, leaf=leaf)
    _refuse_applied(chain, database, before=_in_app_parents(loader, chain[0])[0][1])
    moves = _numbering(loader, app, chain, keep)
    files = _rewrites(loader, app, moves)
    for path, text in files.items():
        _write_source(path, text)
    for item in moves:
        (app.migrations_dir / f"{item.old}.py").unlink()
    write_version(app.version_path, moves[-1].new)
    chain_paths = {app.migrations_dir / f"{item.new}.py" for item in moves}
    others = sorted(path for path in files if path not in chain_paths)
    return RebaseResult(app, kept=keep, leaf=moves[-1].new, moves=moves, rewritten=others)


def _write_source(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # A file rewritten in place within the second its bytecode was cached, at
    # the same size (0004_x -> 0005_x), would otherwise import the stale .pyc.
    Path(cache_from_source(str(path))).unlink(missing_ok=True)


def _sides(conflict: Conflict, renumber: Side) -> tuple[str, str]:
    if renumber == "incoming":
        return conflict.current, conflict.incoming
    return conflict.incoming, conflict.current


def _require_migration(loader: MigrationLoader, app: VersionedApp, side: str, name: str) -> None:
    if name in disk_names(loader, app.label) and (app.label, name) in loader.graph.nodes:
        return
    raise MigrationVersionError(
        f"The {side} side of the conflict in {app.version_path} names {name!r}, but "
        f"{app.migrations_dir / (name + '.py')} is not a migration of the app. Make sure the "
        "merge brought in both branches' migration files (git status), then run the "
        "rebase again."
    )


def _in_app_parents(loader: MigrationLoader, key: Key) -> list[Key]:
    return sorted(p.key for p in loader.graph.node_map[key].parents if p.key[0] == key[0])


def _chain(loader: MigrationLoader, label: str, keep: str, move: str) -> list[Key]:
    """The migrations only the moved side has, oldest first; checked to be linear."""
    kept = set(loader.graph.forwards_plan((label, keep)))
    chain = [
        key
        for key in loader.graph.forwards_plan((label, move))
        if key[0] == label and key not in kept
    ]
    previous: Key | None = None
    for key in chain:
        parents = _in_app_parents(loader, key)
        if len(parents) != 1 or (previous is not None and parents[0] != previous):
            names = ", ".join(p[1] for p in parents) or "none"
            raise MigrationVersionError(
                f"The migrations to renumber are not a straight chain: {label}.{key[1]} "
                f"depends on {names}"
                + (f", not on {previous[1]}" if previous else "")
                + ". Order these migrations by hand (or makemigrations --merge)."
            )
        previous = key
    if chain and _in_app_parents(loader, chain[0])[0] == (label, keep):
        return []  # already after the kept leaf
    return chain


def _refuse_applied(chain: list[Key], database: str, before: str) -> None:
    require_database(database)
    connection = connections[database]
    name = connection.settings_dict.get("NAME")
    if connection.vendor == "sqlite" and name and not _sqlite_exists(str(name)):
        return  # asking would create an empty database file
    try:
        recorder = MigrationRecorder(connection)
        applied = set(recorder.applied_migrations()) if recorder.has_table() else set()
    except DatabaseError as error:
        raise MigrationVersionError(
            f"Cannot read the applied migrations of database {database!r} "
            f"({type(error).__name__}). Start the database, or pass --database, "
            "then run the rebase again."
        ) from None
    done = [key for key in chain if key in applied]
    if done:
        label = done[0][0]
        names = ", ".join(key[1] for key in done)
        raise MigrationVersionError(
            f"Cannot renumber {label} migration(s) {names}: applied in the database "
            f"{database!r}. Abort the merge (git merge --abort, or git rebase --abort), "
            f"unapply them on your branch (manage.py migrate {label} {before}), then merge "
            "and run the rebase again."
        )


def _sqlite_exists(name: str) -> bool:
    return name == ":memory:" or name.startswith("file:") or Path(name).exists()


def _numbering(
    loader: MigrationLoader, app: VersionedApp, chain: list[Key], keep: str
) -> list[Move]:
    moving = {name for _label, name in chain}
    numbers = [_number(name) for name in disk_names(loader, app.label) - moving]
    top = max((n for n in numbers if n is not None), default=0)
    moves, depends_on = [], keep
    for offset, (_label, old) in enumerate(chain, start=1):
        match = NUMBERED.match(old)
        if match is None:
            raise MigrationVersionError(
                f"{app.label}.{old} has no number prefix (such as 0003_), so it cannot be "
                "renumbered. Rename it by hand."
            )
        width = max(4, len(match["number"]))
        new = f"{top + offset:0{width}d}_{match['rest']}"
        if new in disk_names(loader, app.label):
            raise MigrationVersionError(
                f"Renumbering {app.label}.{old} to {new} would overwrite an existing "
                "migration. Rename one of them by hand."
            )
        moves.append(Move(old, new, depends_on))
        depends_on = new
    return moves


def _number(name: str) -> int | None:
    match = NUMBERED.match(name)
    return int(match["number"]) if match else None


def _migration_file(loader: MigrationLoader, key: Key) -> Path:
    module = import_module(type(loader.disk_migrations[key]).__module__)
    return Path(str(module.__file__))


def _rewrites(loader: MigrationLoader, app: VersionedApp, moves: list[Move]) -> dict[Path, str]:
    """New file contents: the moved migrations at their new paths, and referrers."""
    renames = {item.old: item.new for item in moves}
    files: dict[Path, str] = {}
    for item in moves:
        path = _migration_file(loader, (app.label, item.old))
        # Its dependency inside the app: the old base for the first moved
        # migration (now the kept leaf), the previous moved one for the rest.
        previous = _in_app_parents(loader, (app.label, item.old))[0][1]
        text, renamed = rename_references(
            path.read_text(encoding="utf-8"), app.label, {**renames, previous: item.depends_on}
        )
        if previous not in renamed:
            raise MigrationVersionError(
                f"{path} does not name its dependency {previous!r} as a plain "
                f"({app.label!r}, {previous!r}) tuple in 'dependencies'. Edit it by hand."
            )
        files[path.with_name(f"{item.new}.py")] = text
    for key, migration in loader.disk_migrations.items():
        refs = {*migration.dependencies, *getattr(migration, "run_before", [])}
        if key[0] == app.label and key[1] in renames:
            continue
        if not any(ref[0] == app.label and ref[1] in renames for ref in refs):
            continue
        path = _migration_file(loader, key)
        if is_site_package(path):
            raise MigrationVersionError(
                f"{path} (an installed package) depends on a migration to be renumbered. "
                "Renumber by hand."
            )
        files[path], _renamed = rename_references(
            path.read_text(encoding="utf-8"), app.label, renames
        )
    return files
