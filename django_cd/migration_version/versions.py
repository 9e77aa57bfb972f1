"""Comparing each ``version.txt`` with the migration graph, and keeping it current."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.migrations.exceptions import BadMigrationError, NodeNotFoundError
from django.db.migrations.loader import MigrationLoader

from django_cd.conf import Problem
from django_cd.migration_version.errors import MigrationVersionError
from django_cd.migration_version.files import Status, VersionFile, read_version, write_version
from django_cd.migration_version.firstparty import VersionedApp, require_app, versioned_apps


def load_graph() -> MigrationLoader:
    """The migration graph from disk, as ``makemigrations`` sees it (no database).

    Without a connection, squashed migrations replace the ones they squash.
    """
    # Files written since this process imported the migrations package would
    # otherwise be invisible to the import system's directory cache.
    importlib.invalidate_caches()
    try:
        return MigrationLoader(None, ignore_no_migrations=True)
    except (NodeNotFoundError, BadMigrationError) as error:
        raise MigrationVersionError(
            f"The migration graph cannot be loaded: {error} "
            "Fix the migration files first (manage.py makemigrations --check shows the state)."
        ) from None


def leaf_names(loader: MigrationLoader, label: str) -> list[str]:
    return sorted(name for _app, name in loader.graph.leaf_nodes(label))


def disk_names(loader: MigrationLoader, label: str) -> set[str]:
    return {name for app, name in loader.disk_migrations if app == label}


def _problem(id_: str, app: VersionedApp, msg: str, hint: str) -> Problem:
    return Problem(f"django_cd.{id_}", f"{app.label}: {msg}", hint)


def version_problems(app: VersionedApp, loader: MigrationLoader) -> list[Problem]:
    """What is wrong with one app's ``version.txt`` (ids django_cd.E030-E036)."""
    leaves = leaf_names(loader, app.label)
    version = read_version(app.version_path)
    problems = _file_problems(app, version, leaves, disk_names(loader, app.label))
    if len(leaves) > 1:
        problems.append(
            _problem(
                "E036",
                app,
                f"the migration graph has {len(leaves)} leaf nodes ({', '.join(leaves)}).",
                f"After a git merge, run: manage.py migrationversion --rebase {app.label} "
                f"(when version.txt conflicted) or manage.py makemigrations --merge {app.label}.",
            )
        )
    return problems


def _file_problems(
    app: VersionedApp, version: VersionFile, leaves: list[str], on_disk: set[str]
) -> list[Problem]:
    where = str(app.version_path)
    rewrite = f"Run: manage.py migrationversion --recreate {app.label}"
    if version.status is Status.MISSING:
        create = "Run: manage.py migrationversion"
        return [_problem("E030", app, f"{where} does not exist.", create)]
    if version.status is Status.CONFLICT:
        rebase = f"Run: manage.py migrationversion --rebase {app.label}"
        return [_problem("E031", app, f"{where} has git conflict markers.", rebase)]
    if version.status is Status.UNREADABLE:
        return [_problem("E033", app, f"{where} cannot be read: {version.detail}.", rewrite)]
    if version.status is Status.NOT_ONE_NAME:
        held = f"{where} holds {len(version.lines)} lines; it must hold one migration name."
        return [_problem("E032", app, held, rewrite)]
    if len(leaves) != 1:
        return []  # which leaf it should name is undecided until the graph is linear
    leaf = leaves[0]
    if version.name not in on_disk:
        return [
            _problem(
                "E034",
                app,
                f"{where} names {version.name!r}, which is not a migration of the app "
                f"(the leaf is {leaf!r}).",
                rewrite,
            )
        ]
    if version.name != leaf:
        return [
            _problem(
                "E035",
                app,
                f"{where} names {version.name!r}, but the leaf migration is {leaf!r}.",
                f"{rewrite}; if a branch added {leaf!r} without updating version.txt, "
                "check that both branches' migrations belong in this order.",
            )
        ]
    return []


def all_problems(labels: Iterable[str] = ()) -> list[Problem]:
    """Problems of the named apps' version files, or of every first-party app's."""
    loader = load_graph()
    apps = [require_app(label) for label in labels] or versioned_apps(loader)
    return [problem for app in apps for problem in version_problems(app, loader)]


@dataclass(frozen=True)
class Written:
    """One ``version.txt`` written, and the migration it now names."""

    app: VersionedApp
    name: str
    created: bool


def _single_leaf(loader: MigrationLoader, app: VersionedApp) -> str:
    leaves = leaf_names(loader, app.label)
    if len(leaves) != 1:
        raise MigrationVersionError(
            f"App {app.label!r} has {len(leaves)} leaf migrations "
            f"({', '.join(leaves) or 'none'}), so version.txt cannot name one. "
            f"Run: manage.py migrationversion --rebase {app.label} after a conflicted merge, "
            f"or manage.py makemigrations --merge {app.label}."
        )
    return leaves[0]


def create_versions(labels: Iterable[str] = (), *, recreate: bool = False) -> list[Written]:
    """Write missing version files (every one with ``recreate``); all or nothing."""
    loader = load_graph()
    apps = [require_app(label) for label in labels] or versioned_apps(loader)
    todo: list[Written] = []
    for app in apps:
        version = read_version(app.version_path)
        if version.status is Status.CONFLICT:
            raise MigrationVersionError(
                f"{app.version_path} has git conflict markers; rewriting it would hide "
                f"the conflict. Run: manage.py migrationversion --rebase {app.label}"
            )
        if version.status is not Status.MISSING and not recreate:
            continue
        name = _single_leaf(loader, app)
        if version.name != name:
            todo.append(Written(app, name, created=version.status is Status.MISSING))
    for written in todo:
        write_version(written.app.version_path, written.name)
    return todo


def update_versions(labels: Iterable[str]) -> list[Written]:
    """After makemigrations or squashmigrations: point each touched app at its leaf.

    Apps that are not first-party, or whose graph has several leaves (a merge
    the user declined), are left alone: ``manage.py check`` reports them.
    """
    loader = load_graph()
    by_label = {app.label: app for app in versioned_apps(loader)}
    written = []
    for label in sorted(set(labels)):
        app = by_label.get(label)
        leaves = leaf_names(loader, label)
        if app is None or len(leaves) != 1:
            continue
        version = read_version(app.version_path)
        if version.name != leaves[0]:
            write_version(app.version_path, leaves[0])
            written.append(Written(app, leaves[0], created=version.status is Status.MISSING))
    return written
