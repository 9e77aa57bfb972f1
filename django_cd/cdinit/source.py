"""A settings module's source, read with ``ast``: what cdinit may change with certainty.

cdinit edits a settings file only where the syntax tree says exactly what a
line is: a module-level ``INSTALLED_APPS = [...]`` (or tuple) of string
literals, assigned once and changed nowhere else in the module. Anything
else (``INSTALLED_APPS = BASE_APPS + [...]``, an ``+=`` later, ``.append``)
is left alone and the lines to add are printed instead.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

#: django-environ's methods that read one variable (``env.str("NAME")``, ``env("NAME")``).
ENVIRON_METHODS = frozenset(
    {"str", "bool", "int", "float", "list", "tuple", "dict", "json", "url", "path", "bytes"}
)
#: Calls that read DATABASE_URL without naming it (django-environ, dj-database-url).
DATABASE_URL_READERS = frozenset({"db", "db_url", "config"})


@dataclass(frozen=True)
class ListLiteral:
    """A module-level list or tuple of strings assigned to ``name``, where it is in the file."""

    name: str
    node: ast.List | ast.Tuple
    values: tuple[str, ...]

    @property
    def multiline(self) -> bool:
        return self.node.end_lineno != self.node.lineno


class SettingsSource:
    """The text and syntax tree of one settings file."""

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8") if text is None else text
        self.tree = ast.parse(self.text, filename=str(path))

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)

    def assignments(self, name: str) -> list[ast.stmt]:
        """Module-level statements (also under ``if``/``try`` at module level) that
        assign, augment or annotate ``name``."""
        found = []
        for node in _module_statements(self.tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets for t in _flatten(target)]
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.append(node)
        return found

    def defines(self, name: str) -> bool:
        return bool(self.assignments(name))

    def list_literal(self, name: str) -> ListLiteral | None:
        """``name``'s list of strings when the file sets it once, as a literal, and
        nothing in the module changes it afterwards (no ``+=``, ``.append``, ...)."""
        assignments = self.assignments(name)
        if len(assignments) != 1 or not isinstance(assignments[0], ast.Assign):
            return None
        value = assignments[0].value
        if not isinstance(value, ast.List | ast.Tuple) or len(assignments[0].targets) != 1:
            return None
        if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts):
            return None
        if self._mutated(name):
            return None
        values = tuple(str(e.value) for e in value.elts if isinstance(e, ast.Constant))
        return ListLiteral(name, value, values)

    def _mutated(self, name: str) -> bool:
        for node in ast.walk(self.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == name
            ):
                return True  # INSTALLED_APPS.append(...), .insert, .extend, .remove
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Store | ast.Del)
                and isinstance(node.value, ast.Name)
                and node.value.id == name
            ):
                return True
        return False

    def reads_environment(self, name: str) -> bool:
        """True when some assignment of ``name`` takes its value from the environment."""
        return any(
            environment_reads(node.value)
            for node in self.assignments(name)
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
            and node.value is not None
        )

    def environment_variables(self) -> list[str]:
        """The names of the environment variables the module reads, in order."""
        return environment_reads(self.tree)

    def star_imports(self) -> list[str]:
        """Modules this one imports with ``from X import *`` (relative ones resolved
        against its package is the caller's job: returned with their leading dots)."""
        return [
            "." * node.level + (node.module or "")
            for node in _module_statements(self.tree)
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
        ]

    def imports_module(self, module: str) -> bool:
        return any(
            isinstance(node, ast.Import) and any(a.name == module for a in node.names)
            for node in _module_statements(self.tree)
        )


def _module_statements(tree: ast.Module) -> list[ast.stmt]:
    """Statements run at import: the module body and the bodies of its ``if``/``try``."""
    found: list[ast.stmt] = []
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        found.append(node)
        if isinstance(node, ast.If):
            pending[:0] = [*node.body, *node.orelse]
        elif isinstance(node, ast.Try):
            pending[:0] = [
                *node.body,
                *(s for handler in node.handlers for s in handler.body),
                *node.orelse,
                *node.finalbody,
            ]
    return found


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [t for element in target.elts for t in _flatten(element)]
    return [target]


def environment_reads(tree: ast.AST) -> list[str]:
    """Environment variable names read anywhere in ``tree``: ``os.environ["X"]``,
    ``os.environ.get("X")``, ``os.getenv("X")``, django-environ's ``env("X")`` and
    ``env.str("X")`` (and ``env.db()``: DATABASE_URL), dj-database-url's
    ``config()``, and the keys of ``django_cd.env.read({...})``."""
    found = [
        (getattr(node, "lineno", 0), getattr(node, "col_offset", 0), name)
        for node in ast.walk(tree)
        for name in _reads(node)
    ]
    # In the order of the source (ast.walk goes breadth first).
    return list(dict.fromkeys(name for *_, name in sorted(found)))


def _reads(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
        return _string(node.slice)
    if not isinstance(node, ast.Call):
        return []
    func = node.func
    first = node.args[0] if node.args else None
    if isinstance(func, ast.Attribute):
        if func.attr in ("get", "setdefault", "pop") and _is_os_environ(func.value):
            return _string(first) if func.attr != "setdefault" else []
        if func.attr == "getenv" and _dotted(func.value) == "os":
            return _string(first)
        owner = _dotted(func.value)
        reads_dict = func.attr == "read" and isinstance(first, ast.Dict)
        if reads_dict and owner in ("env", "cd_env", "django_cd.env"):
            assert isinstance(first, ast.Dict)
            return [name for key in first.keys if key is not None for name in _string(key)]
        if owner in ("env", "environ.Env()") and func.attr in ENVIRON_METHODS:
            return _string(first)
        if func.attr in DATABASE_URL_READERS and owner in ("env", "dj_database_url"):
            given = _string(first) or _keyword_string(node, "env" if owner != "env" else "var")
            return given or ["DATABASE_URL"]
    if isinstance(func, ast.Name) and func.id == "getenv":
        return _string(first)
    if isinstance(func, ast.Name) and func.id == "env" and first is not None:
        return _string(first)
    return []


def _is_os_environ(node: ast.expr) -> bool:
    return _dotted(node) in ("os.environ", "environ")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call) and not node.args and not node.keywords:
        return f"{_dotted(node.func)}()"
    return ""


def _string(node: ast.AST | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return []


def _keyword_string(call: ast.Call, name: str) -> list[str]:
    return [n for k in call.keywords if k.arg == name for n in _string(k.value)]
