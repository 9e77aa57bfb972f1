"""Operation-level lint rules: what one migration operation means for a deploy.

Each rule looks at one operation with the project state before and after it
and returns ``(kind, code, why)`` triples. Kinds:

- ``irreversible``: ``migrate`` cannot unapply it; a rollback needs a backup restore.
- ``backward-incompatible``: the release still serving during the switch breaks.
- ``data-loss``: unapplying recreates the column or table empty.
- ``expand-contract`` (plan-level, see lints.py).
"""

from __future__ import annotations

import re
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import operations
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.models import ModelOperation
from django.db.migrations.state import ProjectState
from django.db.models import NOT_PROVIDED, Field

Rule = tuple[str, str, str]
SIZED_TYPE = re.compile(r"^(?P<base>[a-z ]+)\((?P<size>\d+)\)$")
OLD_RELEASE = "the release still serving during the switch"


def _field(state: ProjectState, app: str, model: str, name: str) -> Field[Any, Any] | None:
    model_state = state.models.get((app, model.lower()))
    return None if model_state is None else model_state.fields.get(name)


def irreversible(op: Operation) -> list[Rule]:
    if op.reversible:
        return []
    if isinstance(op, operations.RunPython):
        what = "RunPython without reverse_code"
    elif isinstance(op, operations.RunSQL):
        what = "RunSQL without reverse_sql"
    else:
        what = f"{type(op).__name__} is irreversible"
    return [
        (
            "irreversible",
            "IRREVERSIBLE",
            f"{what}: migrating back raises IrreversibleError, so rolling back this "
            "release needs a backup restore.",
        )
    ]


def _db_type(field: Field[Any, Any], connection: BaseDatabaseWrapper) -> str | None:
    if field.is_relation:
        return None  # its column type follows the target model; not known unbound
    try:
        return field.db_type(connection)
    except (AttributeError, TypeError):
        return None  # a custom field whose type needs its model: not comparable here


def schema_rules(
    op: Operation,
    app: str,
    before: ProjectState,
    connection: BaseDatabaseWrapper,
) -> list[Rule]:
    """Backward-incompatible and data-dropping schema changes."""
    if isinstance(op, operations.RemoveField):
        where = f"{op.model_name}.{op.name}"
        return [
            (
                "backward-incompatible",
                "DROP_COLUMN",
                f"drops the column of {where}; {OLD_RELEASE} still selects it and fails.",
            ),
            (
                "data-loss",
                "DROP_COLUMN",
                f"migrating back recreates {where} empty; its data comes back only from a backup.",
            ),
        ]
    if isinstance(op, operations.DeleteModel):
        return [
            (
                "backward-incompatible",
                "DROP_TABLE",
                f"drops the table of {op.name}; {OLD_RELEASE} still queries it and fails.",
            ),
            (
                "data-loss",
                "DROP_TABLE",
                f"migrating back recreates the table of {op.name} empty; its rows come back "
                "only from a backup.",
            ),
        ]
    if isinstance(op, operations.RenameField):
        return [
            (
                "backward-incompatible",
                "RENAME_COLUMN",
                f"renames {op.model_name}.{op.old_name} to {op.new_name}; {OLD_RELEASE} "
                "still uses the old column name and fails.",
            )
        ]
    if isinstance(op, operations.RenameModel | operations.AlterModelTable):
        return [
            (
                "backward-incompatible",
                "RENAME_TABLE",
                f"renames the table of {op.name}; {OLD_RELEASE} still uses the old "
                "table name and fails.",
            )
        ]
    if isinstance(op, operations.AddField):
        return _add_field(op)
    if isinstance(op, operations.AlterField):
        old = _field(before, app, op.model_name, op.name)
        return [] if old is None else _alter_field(op, old, connection)
    return []


def _add_field(op: operations.AddField) -> list[Rule]:
    field = op.field
    if field.many_to_many or field.null or field.db_default is not NOT_PROVIDED:
        return []
    return [
        (
            "backward-incompatible",
            "NOT_NULL",
            f"adds {op.model_name}.{op.name} as NOT NULL without a database default; "
            f"{OLD_RELEASE} inserts rows without it and fails. Give it db_default=..., "
            "or add it with null=True first.",
        )
    ]


def _alter_field(
    op: operations.AlterField, old: Field[Any, Any], connection: BaseDatabaseWrapper
) -> list[Rule]:
    where = f"{op.model_name}.{op.name}"
    found = []
    old_type, new_type = _db_type(old, connection), _db_type(op.field, connection)
    if old_type != new_type and not _widens(old_type, new_type):
        found.append(
            (
                "backward-incompatible",
                "ALTER_COLUMN_TYPE",
                f"changes the column type of {where} from {old_type} to {new_type}; "
                f"{OLD_RELEASE} may write values the new type refuses.",
            )
        )
    if old.null and not op.field.null:
        found.append(
            (
                "backward-incompatible",
                "NOT_NULL",
                f"makes {where} NOT NULL; {OLD_RELEASE} may still write NULL and fail.",
            )
        )
    return found


def _widens(old: str | None, new: str | None) -> bool:
    """True for ``varchar(50)`` -> ``varchar(255)``: every old value still fits."""
    old_match = SIZED_TYPE.match(old or "")
    new_match = SIZED_TYPE.match(new or "")
    return bool(
        old_match
        and new_match
        and old_match["base"] == new_match["base"]
        and int(new_match["size"]) >= int(old_match["size"])
    )


def model_of(op: Operation) -> str | None:
    """The lowercased model name an operation changes, if it changes one."""
    name = getattr(op, "model_name_lower", None)
    if isinstance(name, str):
        return name
    if isinstance(op, ModelOperation):
        return op.name_lower
    return None


def is_schema_operation(op: Operation) -> bool:
    """Django's own schema operations: the rules above read their meaning.

    For them the SQL-level schema codes are not repeated, and SQLite's table
    rebuilds (copy, DROP TABLE, rename) do not read as drops. Raw SQL and
    third-party operations keep the full SQL-level analysis.
    """
    special = (operations.RunSQL, operations.RunPython, operations.SeparateDatabaseAndState)
    return type(op).__module__.startswith("django.db.migrations.operations") and not isinstance(
        op, special
    )
