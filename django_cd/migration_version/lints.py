"""Lints of a migration plan: what the migrations a database has not applied yet mean
for a deploy that keeps the previous release serving and may have to roll back.

:func:`lint_plan` is the library function the predeploy gates and
``deploy --dry-run`` call. Operation-level rules (:mod:`.rules`) see what
Django's operations mean; django-migration-linter's SQL analysis of each
operation's SQL, on the target database's own backend, sees what raw SQL does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, NotSupportedError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import operations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState
from django_migration_linter.sql_analyser.analyser import (
    analyse_sql_statements,
    get_sql_analyser_class,
)

from django_cd.migration_version import rules
from django_cd.migration_version.plan import Plan, Target, executor, pending_plan

#: Finding kinds, most serious first.
KINDS = ("irreversible", "backward-incompatible", "data-loss", "expand-contract", "locking")
#: django-migration-linter codes and the kind of finding each is.
SQL_KINDS = {
    "RENAME_TABLE": "backward-incompatible",
    "RENAME_COLUMN": "backward-incompatible",
    "DROP_COLUMN": "backward-incompatible",
    "DROP_TABLE": "backward-incompatible",
    "NOT_NULL": "backward-incompatible",
    "ALTER_COLUMN": "backward-incompatible",
    "ADD_UNIQUE": "backward-incompatible",
    "CREATE_INDEX": "locking",
    "CREATE_INDEX_EXCLUSIVE": "locking",
    "DROP_INDEX": "locking",
    "REINDEX": "locking",
}
#: SQL codes whose meaning the operation rules already cover for COVERED operations.
SCHEMA_CODES = frozenset(
    {"RENAME_TABLE", "RENAME_COLUMN", "DROP_COLUMN", "DROP_TABLE", "NOT_NULL", "ALTER_COLUMN"}
)


@dataclass(frozen=True)
class Finding:
    """One thing a pending migration operation means for the deploy."""

    app: str
    migration: str
    #: The operation's position in the migration (0-based) and its description.
    index: int
    operation: str
    kind: str
    code: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Report:
    """The lints of one database's pending plan, and a plain verdict."""

    plan: Plan
    vendor: str
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default=())

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    @property
    def needs_restore(self) -> bool:
        """True when ``migrate`` cannot unapply the plan: rollback needs a backup."""
        return bool(self.of_kind("irreversible"))

    @property
    def verdict(self) -> str:
        return "needs restore" if self.needs_restore else "reversible by migrate"

    @property
    def summary(self) -> str:
        where = f"{self.plan.database!r} ({self.vendor})"
        if not self.plan.steps:
            return f"Nothing to migrate on {where}."
        counts = [f"{len(self.of_kind(kind))} {kind}" for kind in KINDS if self.of_kind(kind)]
        tail = "; ".join(counts) if counts else "no findings"
        return f"{len(self.plan)} migration(s) to apply on {where}: {self.verdict} ({tail})."

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.plan.database,
            "vendor": self.vendor,
            "verdict": self.verdict,
            "needs_restore": self.needs_restore,
            "summary": self.summary,
            "plan": self.plan.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }


def lint_plan(database: str = DEFAULT_DB_ALIAS, targets: list[Target] | None = None) -> Report:
    """Lint the migrations ``migrate`` would apply on ``database`` (to ``targets``)."""
    plan = pending_plan(database, targets)
    migration_executor = executor(database)
    loader = migration_executor.loader
    connection = connections[database]
    findings: list[Finding] = []
    notes: list[str] = []
    forwards = [
        loader.graph.nodes[(step.app, step.name)] for step in plan.steps if not step.backwards
    ]
    # Models created earlier in the plan are unknown to the release still
    # serving: changing them cannot break it, and they hold no old data.
    created: set[tuple[str, str]] = set()
    # States carried along the plan, as migrate does (rebuilding them from the
    # graph for each migration is quadratic in the plan's length). The rules
    # read model states only; the SQL needs rendered models, kept in their own
    # state so that the rules never pay for re-rendering.
    state = _applied_project_state(migration_executor)
    sql_state: ProjectState | None = None
    for migration in forwards:
        sql_state = sql_state or state.clone()
        sql, note = _operation_sql(connection, migration, sql_state)
        if sql is None:
            sql_state = None  # half-advanced; rebuilt from the rules' state
            notes.append(note)
        findings += _migration_findings(connection, migration, state, sql, created)
    findings += _expand_contract(forwards)
    # In plan order, then operation order (expand-contract findings came last).
    order = {(m.app_label, m.name): position for position, m in enumerate(forwards)}
    findings.sort(key=lambda f: (order[(f.app, f.migration)], f.index))
    return Report(plan, connection.vendor, tuple(findings), tuple(notes))


def _applied_project_state(migration_executor: MigrationExecutor) -> ProjectState:
    """The project state of the applied migrations (what migrate starts from)."""
    loader = migration_executor.loader
    state = ProjectState(real_apps=loader.unmigrated_apps)
    applied = {loader.graph.nodes[k] for k in loader.applied_migrations if k in loader.graph.nodes}
    full_plan = migration_executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
    for migration, _backwards in full_plan:
        if migration in applied:
            migration.mutate_state(state, preserve=False)
    return state


def _states(
    state: ProjectState, migration: Migration
) -> Iterator[tuple[int, Any, ProjectState, ProjectState]]:
    """Each operation with the project state before and after it; advances ``state``."""
    for index, op in enumerate(migration.operations):
        before = state.clone()
        op.state_forwards(migration.app_label, state)
        yield index, op, before, state


def _migration_findings(
    connection: BaseDatabaseWrapper,
    migration: Migration,
    state: ProjectState,
    sql: list[list[str]] | None,
    created: set[tuple[str, str]],
) -> list[Finding]:
    analyser = get_sql_analyser_class(connection.vendor)
    found = []
    for index, op, before, _after in _states(state, migration):
        triples = rules.irreversible(op)
        model = (migration.app_label, rules.model_of(op) or "")
        if isinstance(op, operations.CreateModel):
            created.add(model)
        elif model in created:
            pass  # only irreversibility matters for a model this plan creates
        else:
            triples += rules.schema_rules(op, migration.app_label, before, connection)
            triples += _sql_rules(analyser, op, sql[index] if sql is not None else [])
        found += [
            Finding(migration.app_label, migration.name, index, op.describe(), kind, code, why)
            for kind, code, why in triples
        ]
    return found


def _sql_rules(analyser: Any, op: Any, statements: list[str]) -> list[rules.Rule]:
    """django-migration-linter's findings on the SQL of one operation."""
    triples: list[rules.Rule] = []
    errors, _ignored, warnings = analyse_sql_statements(analyser, statements)
    for issue in [*errors, *warnings]:
        if rules.is_schema_operation(op) and issue.code in SCHEMA_CODES:
            continue
        kind = SQL_KINDS.get(issue.code, "backward-incompatible")
        place = []
        if issue.table:
            place.append(f"table {issue.table}")
        if issue.column:
            place.append(f"column {issue.column}")
        on = f" ({', '.join(place)})" if place else ""
        triples.append((kind, issue.code, f"SQL: {issue.message}{on}."))
    return triples


def _operation_sql(
    connection: BaseDatabaseWrapper, migration: Migration, state: ProjectState
) -> tuple[list[list[str]] | None, str]:
    """The SQL of each operation (None, and why, when it cannot be rendered here)."""
    per_operation: list[list[str]] = []
    try:
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            for _index, op, before, after in _states(state, migration):
                start, deferred = len(editor.collected_sql), list(editor.deferred_sql)
                if op.reduces_to_sql:
                    op.database_forwards(migration.app_label, editor, before, after)
                # Deferred SQL (indexes, foreign keys) runs at the end; it belongs
                # to the operation that queued it.
                queued = [s for s in editor.deferred_sql if not any(s is d for d in deferred)]
                per_operation.append(editor.collected_sql[start:] + [str(s) for s in queued])
    except (NotSupportedError, DatabaseError, ValueError) as error:
        # E.g. SQLite inside a transaction, or an operation that introspects a
        # table the database does not have yet; the operation rules still ran.
        where = f"{migration.app_label}.{migration.name}"
        return None, f"SQL of {where} not analysed: {type(error).__name__}: {error}"
    return per_operation, ""


def _expand_contract(migrations: list[Migration]) -> list[Finding]:
    """A model that gains a field and loses another, or a rename, in one release."""
    added: dict[tuple[str, str], list[str]] = defaultdict(list)
    created = set()
    for migration in migrations:
        for op in migration.operations:
            if isinstance(op, operations.CreateModel):
                created.add((migration.app_label, op.name_lower))
            if isinstance(op, operations.AddField):
                added[(migration.app_label, op.model_name_lower)].append(op.name)
    found = []
    split = "Split it over two deploys: expand first (add, write both), contract in a later one."
    for migration in migrations:
        for index, op in enumerate(migration.operations):
            why = ""
            if (migration.app_label, rules.model_of(op) or "") in created:
                continue  # a model new in this release has no old readers
            if isinstance(op, operations.RemoveField):
                new = added.get((migration.app_label, op.model_name_lower))
                if new:
                    why = (
                        f"{op.model_name} gains {', '.join(new)} and loses {op.name} "
                        f"in one release. {split}"
                    )
            elif isinstance(op, operations.RenameField | operations.RenameModel):
                why = f"a rename is an expand and a contract in one release. {split}"
            if why:
                found.append(
                    Finding(
                        migration.app_label,
                        migration.name,
                        index,
                        op.describe(),
                        "expand-contract",
                        "EXPAND_CONTRACT",
                        why,
                    )
                )
    return found
