"""The code's own gates, read from git: a clean tree, and no secret committed."""

from __future__ import annotations

import ast
import posixpath
import re

from django_cd import conf
from django_cd.gates.result import Gate, fail, ok, warn
from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.secrets import URL_PASSWORD

# Names whose literal value is a secret when committed (SECRET_KEY, DB_PASSWORD...).
# "KEY" alone would flag harmless names such as DEFAULT_AUTO_FIELD's neighbours.
SECRET_SETTING = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY|CREDENTIAL", re.I)


def tree_gate(repo: Repository, env: conf.Environment, allow_dirty: bool) -> Gate:
    """The checkout has no uncommitted changes to tracked files (or dirt is allowed)."""
    dirty = repo.dirty_files()
    if not dirty:
        return ok("tree", "The work tree is clean.")
    listed = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
    if not env.allow_dirty:
        return fail(
            "tree",
            f"Uncommitted changes ({listed}); environment {env.name!r} takes only clean "
            "checkouts (allow_dirty is False).",
            "Commit or stash the changes.",
        )
    if allow_dirty:
        return warn(
            "tree",
            f"Uncommitted changes ({listed}); the commit is deployed without them.",
            "--allow-dirty was given.",
        )
    return fail(
        "tree",
        f"Uncommitted changes ({listed}).",
        "Commit or stash them, or pass --allow-dirty to deploy the commit anyway.",
    )


def settings_files(repo: Repository, env: conf.Environment, commit: str) -> list[str]:
    """The environment's settings module in ``commit``, and the modules it star-imports.

    The module is looked up from the repository root and from ``manage.py``'s
    directory, the two places a project puts on ``sys.path``.
    """
    tree = set(repo.git("ls-tree", "-r", "--name-only", commit).splitlines())
    bases = ["", posixpath.dirname(env.manage)]
    found: list[str] = []
    pending = [env.settings]
    while pending:
        module = pending.pop()
        path = _module_path(module, bases, tree)
        if path is None or path in found:
            continue
        found.append(path)
        pending += _imported_modules(module, path, _show(repo, commit, path))
    return found


def _module_path(module: str, bases: list[str], tree: set[str]) -> str | None:
    relative = module.replace(".", "/")
    for base in bases:
        for candidate in (f"{relative}.py", f"{relative}/__init__.py"):
            path = posixpath.join(base, candidate) if base else candidate
            if path in tree:
                return path
    return None


def _show(repo: Repository, commit: str, path: str) -> str:
    return repo.git("show", f"{commit}:{path}")


def _imported_modules(module: str, path: str, source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                modules.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                modules.append(node.module)
    return modules


def committed_secrets(source: str) -> list[tuple[int, str]]:
    """(line, what) for each secret-looking literal: never the value itself."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Name)
                    and _is_literal(node.value)
                    and SECRET_SETTING.search(target.id)
                ):
                    found.append((node.lineno, f"{target.id} is a string literal"))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and isinstance(key.value, str)
                    and SECRET_SETTING.search(key.value)
                    and _is_literal(value)
                ):
                    found.append((key.lineno, f"{key.value!r} is a string literal"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and URL_PASSWORD.search(node.value)
        ):
            found.append((node.lineno, "a URL with a password"))
    return sorted(set(found))


def _is_literal(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(node.value)


def secrets_gate(repo: Repository, env: conf.Environment, commit: str) -> Gate:
    """No secret-looking literal in the settings modules the environment runs."""
    try:
        files = settings_files(repo, env, commit)
    except PipelineError as error:
        return fail("secrets", f"The settings modules cannot be read: {error}")
    if not files:
        return warn(
            "secrets",
            f"The settings module {env.settings} is not in the commit; nothing was scanned.",
            "It is installed some other way; scan it by hand.",
        )
    findings = [
        f"{path}:{line}: {what}"
        for path in files
        for line, what in committed_secrets(_show(repo, commit, path))
    ]
    if findings:
        return fail(
            "secrets",
            f"Secret-looking literal(s) committed in {env.name}'s settings: "
            + "; ".join(findings)
            + ".",
            "Read them from the environment (django_cd.env, shared/.env) and rotate them: "
            "they are in the git history now.",
        )
    return ok("secrets", f"No secret literal in {', '.join(files)}.")
