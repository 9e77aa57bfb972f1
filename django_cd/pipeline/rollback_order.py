"""Which goes first in a rollback across migrations: the code or the database.

The code that serves must always match the schema. When every migration to
unapply only *adds* to the schema (a table, a nullable column, a column with a
database default, an index), the older code works on the newer schema: switch
to it first, then migrate back, and no request fails. Otherwise the database
goes back first, and the newer code, still serving until the switch, fails
where it uses what is being removed: the step output says so.

The operations are read inside the newer release (which has the migrations
to unapply), with the target's settings, like ``migrations.probe``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release

MARKER = "@@django-cd-rollback-order@@"

CLASSIFY_CODE = """
import json
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations import operations
from django.db.migrations.executor import MigrationExecutor
from django.db.models import NOT_PROVIDED

def why_not_additive(op):
    if isinstance(op, operations.CreateModel):
        related = [name for name, field in op.fields if field.is_relation]
        # Rows of a new table that point at an old one block the old code's deletes.
        return f"the new table references others ({', '.join(related)})" if related else None
    if isinstance(op, operations.AddField):
        field = op.field
        if field.null or field.many_to_many:
            return None
        if getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
            return None
        return "a NOT NULL column without a database default: the old code's inserts fail"
    if isinstance(op, operations.AddIndex):
        return None
    return "not known to be additive"

executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
graph = executor.loader.graph
target = json.loads(%(target)r)
apps = sorted({app for app, _ in graph.nodes})
found = []
for migration, backwards in executor.migration_plan([(a, target.get(a)) for a in apps]):
    if not backwards:
        continue
    for op in migration.operations:
        found.append({"migration": f"{migration.app_label}.{migration.name}",
                      "operation": op.describe(), "not_additive": why_not_additive(op)})
print(%(marker)r + json.dumps(found))
"""


@dataclass(frozen=True)
class RollbackOrder:
    """The operations to unapply, and whether the old code can serve on top of them."""

    operations: list[dict[str, str | None]]

    @property
    def backward(self) -> bool:
        """Whether there is anything to undo at all."""
        return bool(self.operations)

    @property
    def code_first(self) -> bool:
        return all(op["not_additive"] is None for op in self.operations)

    @property
    def blocking(self) -> list[str]:
        """Operations that make the old code fail on the newer schema, with why."""
        return [
            f"{op['migration']}: {op['operation']} ({op['not_additive']})"
            for op in self.operations
            if op["not_additive"] is not None
        ]

    def describe(self) -> str:
        """The plan step's note when the order differs from database first."""
        return "only additions to undo: old code first, database after the switch"

    def warning(self) -> str | None:
        """What fails, and for how long, when the database must go first."""
        if self.code_first:
            return None
        return (
            "The database was migrated back before the old release served: from the start "
            "of the database step until the reload (see their times), requests of the newer "
            "release that use what was removed failed: " + "; ".join(self.blocking) + "."
        )


def classify(newer: Release, target: dict[str, str | None]) -> RollbackOrder:
    """Read, in ``newer``, the operations to unapply to reach ``target``."""
    code = CLASSIFY_CODE % {"target": json.dumps(target), "marker": MARKER}
    result = newer.manage("shell", "-v", "0", "-c", code, timeout=300)
    found = None
    for line in result.output.splitlines():
        if line.startswith(MARKER):
            found = json.loads(line[len(MARKER) :])
    if not result.ok or found is None:
        raise StepFailed("plan", "Reading the migrations to unapply failed.", result.output)
    return RollbackOrder(found)
