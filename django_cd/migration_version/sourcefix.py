"""Rewriting migration dependencies in a migration file's source, nothing else.

Only ``("app", "name")`` tuples in a class-level ``dependencies`` or
``run_before`` list are touched, found through the syntax tree, so a
migration name that also appears in a comment, a docstring or RunSQL text
stays as it was.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

REFERENCE_LISTS = frozenset({"dependencies", "run_before"})


def _reference_lists(tree: ast.Module) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.Assign):
                names = {t.id for t in statement.targets if isinstance(t, ast.Name)}
                value: ast.expr | None = statement.value
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                names, value = {statement.target.id}, statement.value
            else:
                continue
            if names & REFERENCE_LISTS and value is not None:
                found.append(value)
    return found


def _name_constants(value: ast.expr, app_label: str) -> list[ast.Constant]:
    """The name halves of ``(app_label, name)`` tuples in one list or tuple."""
    constants = []
    for element in getattr(value, "elts", []):
        if not (isinstance(element, ast.Tuple) and len(element.elts) == 2):
            continue
        app, name = element.elts
        if (
            isinstance(app, ast.Constant)
            and app.value == app_label
            and isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and name.lineno == name.end_lineno
        ):
            constants.append(name)
    return constants


def rename_references(
    source: str, app_label: str, renames: Mapping[str, str]
) -> tuple[str, set[str]]:
    """``source`` with each ``(app_label, old)`` reference renamed; and the olds renamed."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: dict[int, list[tuple[int, int, str]]] = {}
    renamed: set[str] = set()
    for value in _reference_lists(tree):
        for constant in _name_constants(value, app_label):
            old = str(constant.value)
            new = renames.get(old)
            if new is None or constant.end_col_offset is None:
                continue
            index = constant.lineno - 1
            # ast offsets count UTF-8 bytes, so edit the encoded line.
            original = lines[index].encode()[constant.col_offset : constant.end_col_offset]
            quote = original[:1].decode()
            edits.setdefault(index, []).append(
                (constant.col_offset, constant.end_col_offset, f"{quote}{new}{quote}")
            )
            renamed.add(old)
    for index, line_edits in edits.items():
        encoded = lines[index].encode()
        for start, end, text in sorted(line_edits, reverse=True):
            encoded = encoded[:start] + text.encode() + encoded[end:]
        lines[index] = encoded.decode()
    return "".join(lines), renamed
