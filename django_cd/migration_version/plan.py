"""What ``migrate`` would do on a database, and the applied state to come back to.

The deploy engine asks two questions here: which migrations would ``migrate``
apply on this database, and can they all be unapplied (:func:`pending_plan`);
and what is applied now (:func:`applied_state`), which it records in each
release manifest and migrates back to on rollback (:func:`migrate_targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration

from django_cd.migration_version.errors import MigrationVersionError

Key = tuple[str, str]
#: ``(app_label, migration_name)``, or ``(app_label, None)`` for "zero" (nothing applied).
Target = tuple[str, str | None]


@dataclass(frozen=True)
class Step:
    """One migration of a plan, applied (forwards) or unapplied (backwards)."""

    app: str
    name: str
    backwards: bool
    #: Descriptions of operations that cannot be unapplied.
    irreversible: tuple[str, ...]

    @property
    def reversible(self) -> bool:
        return not self.irreversible

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "name": self.name,
            "backwards": self.backwards,
            "reversible": self.reversible,
            "irreversible": list(self.irreversible),
        }


@dataclass(frozen=True)
class Plan:
    """The migrations ``migrate`` would run on ``database``, in order."""

    database: str
    steps: tuple[Step, ...]

    @property
    def reversible(self) -> bool:
        """True when ``migrate`` can undo every step (no backup restore needed)."""
        return all(step.reversible for step in self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "reversible": self.reversible,
            "steps": [step.to_dict() for step in self.steps],
        }


def require_database(database: str) -> None:
    """A clear error for a database alias that DATABASES does not define."""
    known = list(connections)
    if database not in known:
        raise MigrationVersionError(
            f"No database {database!r} in DATABASES. Use one of: {', '.join(known)}."
        )


def executor(database: str = DEFAULT_DB_ALIAS) -> MigrationExecutor:
    """A migration executor on ``database`` whose graph has one leaf per app."""
    require_database(database)
    migration_executor = MigrationExecutor(connections[database])
    conflicts = migration_executor.loader.detect_conflicts()
    if conflicts:
        listed = "; ".join(
            f"{app}: {', '.join(names)}" for app, names in sorted(conflicts.items())
        )
        raise MigrationVersionError(
            f"Conflicting migrations (several leaf nodes) - {listed}. "
            "Run: manage.py migrationversion --rebase APP, or makemigrations --merge."
        )
    return migration_executor


def irreversible_operations(migration: Migration) -> tuple[str, ...]:
    return tuple(op.describe() for op in migration.operations if not op.reversible)


def plan_targets(app_label: str | None, name: str | None = None) -> list[Target] | None:
    """``migrate [APP [NAME]]``'s targets: None (every leaf), APP's leaf, or APP.NAME."""
    if app_label is None:
        return None
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    if name is None:
        leaves = graph.leaf_nodes(app_label)
        if not leaves:
            raise MigrationVersionError(f"App {app_label!r} has no migrations.")
        return [leaves[0]]
    if name == "zero":
        return [(app_label, None)]
    if (app_label, name) not in graph.nodes:
        raise MigrationVersionError(
            f"{app_label}.{name} is not a migration. manage.py showmigrations {app_label} "
            "lists them."
        )
    return [(app_label, name)]


def pending_plan(database: str = DEFAULT_DB_ALIAS, targets: list[Target] | None = None) -> Plan:
    """The plan ``migrate`` (to ``targets``, default every leaf) would run on ``database``."""
    migration_executor = executor(database)
    if targets is None:
        targets = list(migration_executor.loader.graph.leaf_nodes())
    plan = migration_executor.migration_plan(targets)
    steps = tuple(
        Step(m.app_label, m.name, backwards, irreversible_operations(m)) for m, backwards in plan
    )
    return Plan(database, steps)


@dataclass(frozen=True)
class AppliedState:
    """The migrations applied on a database at one moment (recorded per release)."""

    database: str
    applied: tuple[Key, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "applied": [list(key) for key in self.applied]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppliedState:
        applied = tuple(sorted((str(app), str(name)) for app, name in data["applied"]))
        return cls(str(data["database"]), applied)


def applied_state(database: str = DEFAULT_DB_ALIAS) -> AppliedState:
    """What is applied on ``database`` now, for the release manifest."""
    require_database(database)
    applied = MigrationExecutor(connections[database]).loader.applied_migrations
    return AppliedState(database, tuple(sorted(applied)))


def migrate_targets(state: AppliedState, graph: MigrationGraph) -> list[Target]:
    """Per app of ``graph``, the migration to migrate back to for ``state`` (None: zero).

    Call it with the graph of the release being rolled back: it holds every
    migration that may have to be unapplied.
    """
    applied = set(state.applied)
    targets: list[Target] = []
    for app in sorted({app for app, _name in graph.nodes}):
        in_app = [key for key in graph.nodes if key[0] == app and key in applied]
        latest = [
            key
            for key in in_app
            if not any(c.key in applied and c.key[0] == app for c in graph.node_map[key].children)
        ]
        targets.append((app, max(latest)[1]) if latest else (app, None))
    return targets


def rollback_plan(state: AppliedState, database: str = DEFAULT_DB_ALIAS) -> Plan:
    """The plan that brings ``database`` back to ``state`` (backwards steps)."""
    graph = executor(database).loader.graph
    return pending_plan(database, migrate_targets(state, graph))


def migrate_arguments(targets: list[Target]) -> list[list[str]]:
    """``manage.py migrate APP NAME`` arguments for each target ("zero" for None)."""
    return [[app, name or "zero"] for app, name in targets]


@dataclass(frozen=True)
class DatabaseReport:
    """The database as one release's code sees it: what the deploy engine plans with.

    ``state`` has the format release manifests record (app -> latest applied name).
    """

    #: app label -> the last applied migration of the app's chain (None: none applied).
    state: dict[str, str | None]
    #: ``app.name`` of every migration ``migrate`` would apply, in order.
    pending: list[str]
    #: To reach the requested target: the migrations to unapply, in order, each with
    #: the operations that cannot be reversed.
    backward: list[dict[str, Any]]
    #: ``app.name`` of applied migrations of known apps that this code does not have.
    unknown: list[str]
    #: app label -> the latest migration of this code.
    leaves: dict[str, str]
    #: The lints of the pending migrations, when asked for (summary, findings).
    lints: dict[str, Any] | None = None

    @property
    def matches(self) -> bool:
        """The database is exactly what the release's code expects."""
        return not self.pending and not self.unknown

    @property
    def irreversible(self) -> list[str]:
        """Backward migrations that block a migrate back, with why."""
        return [
            f"{m['name']} ({', '.join(m['irreversible'])} cannot be reversed)"
            for m in self.backward
            if m["irreversible"]
        ]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatabaseReport:
        """The report ``manage.py cdplan`` printed (``to_dict``), read back."""
        return cls(
            state=data["state"],
            pending=data["pending"],
            backward=data["backward"],
            unknown=data["unknown"],
            leaves=data["leaves"],
            lints=data.get("lints"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pending": self.pending,
            "backward": self.backward,
            "unknown": self.unknown,
            "leaves": self.leaves,
            "lints": self.lints,
        }


def database_report(
    target: dict[str, str | None] | None = None,
    *,
    lint: bool = False,
    database: str = DEFAULT_DB_ALIAS,
) -> DatabaseReport:
    """What ``migrate`` would apply on ``database``, what is applied per app, what this
    code does not know, and (with ``target``, app -> name or None for zero) the
    migrations to unapply to get there; with ``lint``, the lints of what is pending.

    Conflicting leaves are not refused here (unlike :func:`executor`): the engine
    reports them through ``check`` and the version files.
    """
    require_database(database)
    migration_executor = MigrationExecutor(connections[database])
    graph = migration_executor.loader.graph
    applied = migration_executor.loader.applied_migrations
    apps = sorted({app for app, _name in graph.nodes})
    state: dict[str, str | None] = {}
    for app in apps:
        chain = [key for leaf in graph.leaf_nodes(app) for key in graph.forwards_plan(leaf)]
        mine = [key for key in chain if key[0] == app and key in applied]
        state[app] = mine[-1][1] if mine else None
    pending = [
        f"{m.app_label}.{m.name}"
        for m, backwards in migration_executor.migration_plan(graph.leaf_nodes())
        if not backwards
    ]
    replaced = {
        key for m in migration_executor.loader.disk_migrations.values() for key in m.replaces or ()
    }
    unknown = sorted(
        f"{app}.{name}"
        for app, name in applied
        if app in apps and (app, name) not in graph.nodes and (app, name) not in replaced
    )
    leaves: dict[str, str] = {}
    for app, name in graph.leaf_nodes():
        leaves[app] = max(leaves.get(app) or "", name)
    backward = []
    if target is not None:
        targets: list[Target] = [(app, target.get(app)) for app in apps]
        for m, backwards in migration_executor.migration_plan(targets):
            if backwards:
                blocking = [type(op).__name__ for op in m.operations if not op.reversible]
                backward.append({"name": f"{m.app_label}.{m.name}", "irreversible": blocking})
    lints = _lints(database) if lint and pending else None
    return DatabaseReport(state, pending, backward, unknown, leaves, lints)


def _lints(database: str) -> dict[str, Any]:
    from django_cd.migration_version.lints import lint_plan

    try:
        report = lint_plan(database)
    except Exception as error:  # a lint bug must not block the plan: say so instead
        return {"summary": f"the lints failed: {type(error).__name__}", "findings": []}
    return {
        "summary": report.summary,
        "needs_restore": report.needs_restore,
        "findings": [finding.to_dict() for finding in report.findings],
    }
