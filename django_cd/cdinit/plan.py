"""What cdinit would change in a project, as file changes to review (a diff) or apply.

Every change is computed from the project as it is now, so running cdinit
again after ``--write`` finds nothing to do.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django_cd.cdinit.changes import FileChange, ManualEdit
from django_cd.cdinit.edits import append_element, first_element, offset
from django_cd.cdinit.envfile import env_templates
from django_cd.cdinit.facts import ProjectError, ProjectFacts
from django_cd.cdinit.requirements import new_requirements_path, requirements_change
from django_cd.cdinit.source import SettingsSource
from django_cd.conf import ENV_NAME_RE

APP = "django_cd"
BACKUP_APP = "dbbackup"
MIDDLEWARE = "django_cd.middleware.ReleaseHeaderMiddleware"
SERVERS = ("gunicorn", "uwsgi", "command")
FIRST_PORT = 8001
BLOCK_MARK = "# --- django-cd: added by manage.py cdinit (docs/cdinit.md) ---"
#: Settings a stock project writes as constants, that a deployed release must set
#: from its environment instead: name -> (variable, how the value is read).
OVERRIDES = {
    "SECRET_KEY": ("DJANGO_SECRET_KEY", 'os.environ["DJANGO_SECRET_KEY"]'),
    "DEBUG": (
        "DJANGO_DEBUG",
        'os.environ["DJANGO_DEBUG"].lower() in ("1", "true", "yes", "on")',
    ),
    "ALLOWED_HOSTS": ("DJANGO_ALLOWED_HOSTS", 'os.environ["DJANGO_ALLOWED_HOSTS"].split(",")'),
    "DATABASES": (
        "DATABASE_URL",
        '{**DATABASES, "default": environ.Env.db_url_config(os.environ["DATABASE_URL"])}',
    ),
    "MEDIA_ROOT": ("DJANGO_MEDIA_ROOT", 'os.environ["DJANGO_MEDIA_ROOT"]'),
}


@dataclass
class Plan:
    """Everything cdinit would do to the project."""

    facts: ProjectFacts
    changes: list[FileChange] = field(default_factory=list)
    manual: list[ManualEdit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env_files: dict[str, Path] = field(default_factory=dict)
    #: Whether the environments back the database up before migrations (dbbackup).
    backup: bool = False

    @property
    def empty(self) -> bool:
        return not self.changes and not self.manual

    def diff(self) -> str:
        return "".join(change.diff(self.facts.repo_root) for change in self.changes)

    def apply(self) -> None:
        for change in self.changes:
            change.apply()


def make_plan(
    facts: ProjectFacts,
    env_names: list[str],
    server: str = "gunicorn",
    root: Path | None = None,
    first_port: int = FIRST_PORT,
    backup: bool | None = None,
) -> Plan:
    """The changes that set ``facts``' project up for django-cd.

    ``backup``: back the database up before migrations (django-dbbackup, added to
    ``INSTALLED_APPS`` and the requirements); by default when it is installed here.
    """
    if server not in SERVERS:
        raise ProjectError(
            f"Unknown server {server!r}. Fix: --server gunicorn, uwsgi or command "
            "(command: your own reload command, e.g. systemctl)."
        )
    for name in env_names:
        if not ENV_NAME_RE.match(name):
            raise ProjectError(
                f"{name!r} is not an environment name: lowercase letters, digits, - and _, "
                "starting with a letter (e.g. --env staging)."
            )
    base = (root or Path.home() / "deploys" / facts.name).expanduser().absolute()
    if base.resolve().is_relative_to(facts.repo_root):
        raise ProjectError(
            f"The deploy root {base} is inside the repository ({facts.repo_root}): every "
            "release would copy the others. Fix: --root with a directory outside it."
        )
    if backup is None:
        # Decided when the environments are made; a project set up already keeps its choice.
        new = not facts.environments and not _defined(_read(facts), "DJANGO_CD")
        importable = bool(importlib.util.find_spec(BACKUP_APP))
        backup = BACKUP_APP in facts.installed_apps or (new and importable)
    plan = Plan(facts, backup=backup)
    texts = _read(facts)
    _installed_apps(plan, texts)
    _middleware(plan, texts)
    _secret_key(texts)
    environments = _environments(plan, env_names, server, base, first_port)
    _settings_block(plan, texts, environments, server)
    for path, text in texts.items():
        old = path.read_text(encoding="utf-8")
        if text != old:
            plan.changes.append(FileChange(path, old, text))
    requirements = requirements_change(facts, server, backup)
    if requirements is not None:
        plan.changes.append(requirements)
    env_files = env_templates(facts, texts, environments)
    plan.changes += env_files.changes
    plan.env_files, plan.notes = env_files.paths, env_files.notes
    return plan


# -- INSTALLED_APPS and MIDDLEWARE ----------------------------------------------------


def _defining(texts: dict[Path, str], name: str) -> tuple[Path, SettingsSource] | None:
    for path, text in texts.items():
        source = SettingsSource(path, text)
        if source.defines(name):
            return path, source
    return None


def _installed_apps(plan: Plan, texts: dict[Path, str]) -> None:
    wanted = [APP, *([BACKUP_APP] if plan.backup else [])]
    missing = [app for app in wanted if app not in plan.facts.installed_apps]
    if not missing:
        return
    found = _defining(texts, "INSTALLED_APPS")
    literal = found[1].list_literal("INSTALLED_APPS") if found else None
    if found is None or literal is None or list(literal.values) != plan.facts.installed_apps:
        added = ", ".join(f'"{app}"' for app in missing)
        plan.manual.append(
            ManualEdit(
                plan.facts.settings_files[0],
                f"INSTALLED_APPS = [*INSTALLED_APPS, {added}]\n",
                "INSTALLED_APPS is not one plain list of strings in the settings",
            )
        )
        return
    path = found[0]
    for app in missing:
        texts[path] = append_element(SettingsSource(path, texts[path]), _node(texts, path), app)


def _node(texts: dict[Path, str], path: Path) -> ast.List | ast.Tuple:
    literal = SettingsSource(path, texts[path]).list_literal("INSTALLED_APPS")
    assert literal is not None  # it was one before an element was added
    return literal.node


def _middleware(plan: Plan, texts: dict[Path, str]) -> None:
    current = plan.facts.middleware
    if current[:1] == [MIDDLEWARE]:
        return
    found = _defining(texts, "MIDDLEWARE")
    literal = found[1].list_literal("MIDDLEWARE") if found else None
    text = None
    if found is not None and literal is not None and list(literal.values) == current:
        text = first_element(found[1], literal.node, MIDDLEWARE)
    if text is None:
        plan.manual.append(
            ManualEdit(
                plan.facts.settings_files[0],
                f'MIDDLEWARE = ["{MIDDLEWARE}", '
                f'*(m for m in MIDDLEWARE if m != "{MIDDLEWARE}")]\n',
                "MIDDLEWARE is not one plain list of strings in the settings",
            )
        )
        return
    assert found is not None
    texts[found[0]] = text


# -- the settings block: values from the environment, STATIC_ROOT, DJANGO_CD ----------


def _secret_key(texts: dict[Path, str]) -> None:
    """``SECRET_KEY = '...'`` becomes ``os.environ.get("DJANGO_SECRET_KEY", '...')``, in
    place: the deployed key comes from shared/.env, the committed one stays for
    development only (the predeploy ``secrets`` gate refuses a literal key)."""
    if _reads_environment(texts, "SECRET_KEY"):
        return
    found = _defining(texts, "SECRET_KEY")
    if found is None:
        return
    path, source = found
    assignments = source.assignments("SECRET_KEY")
    node = assignments[0]
    if (
        len(assignments) != 1
        or not isinstance(node, ast.Assign)
        or node.col_offset != 0
        or node.lineno != node.end_lineno
        or not isinstance(node.value, ast.Constant)
        or not isinstance(node.value.value, str)
    ):
        return  # the block at the end overrides it instead
    lines = source.lines
    literal = ast.get_source_segment(source.text, node.value)
    start = offset(lines, node.lineno, node.value.col_offset)
    text = source.text
    assert literal is not None
    text = (
        text[:start]
        + f'os.environ.get("DJANGO_SECRET_KEY", {literal})'
        + text[start + len(literal) :]
    )
    if not source.imports_module("os"):
        imports = [n for n in source.tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        line = imports[0].lineno if imports and imports[0].lineno < node.lineno else node.lineno
        at = offset(lines, line, 0)
        text = text[:at] + "import os\n" + ("" if imports else "\n") + text[at:]
    texts[path] = text


def _read(facts: ProjectFacts) -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in facts.settings_files}


def _reads_environment(texts: dict[Path, str], name: str) -> bool:
    return any(SettingsSource(path, text).reads_environment(name) for path, text in texts.items())


def _defined(texts: dict[Path, str], name: str) -> bool:
    return any(SettingsSource(path, text).defines(name) for path, text in texts.items())


def _settings_block(
    plan: Plan, texts: dict[Path, str], environments: dict[str, Any], server: str
) -> None:
    facts = plan.facts
    lines: list[str] = []
    for name, (variable, read) in OVERRIDES.items():
        if name == "MEDIA_ROOT" and not facts.inside_repo(facts.media_root):
            continue
        if not _defined(texts, name) or _reads_environment(texts, name):
            continue
        lines += [f"if os.environ.get({variable!r}):".replace("'", '"'), f"    {name} = {read}"]
    if facts.static_root is None and not _defined(texts, "STATIC_ROOT"):
        if _defined(texts, "BASE_DIR"):
            # os.path.join: BASE_DIR is a Path since Django 3.1, a str before.
            lines.append('STATIC_ROOT = os.path.join(BASE_DIR, "staticfiles")  # in each release')
        else:
            lines.append(
                "STATIC_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "
                '"staticfiles")'
            )
    engine = str(facts.database.get("ENGINE", ""))
    adds_backup = plan.backup and BACKUP_APP not in facts.installed_apps
    if adds_backup and "sqlite" in engine and not _defined(texts, "DBBACKUP_CONNECTOR_MAPPING"):
        lines += [
            "# SQLite backups are file copies: a restore gives back exactly the old database.",
            "DBBACKUP_CONNECTOR_MAPPING = {",
            '    "django.db.backends.sqlite3": "dbbackup.db.sqlite.SqliteCPConnector"',
            "}",
        ]
    if environments:
        lines += ["", *_render_django_cd(environments, server, facts)]
    if not lines:
        return
    head = [
        "",
        "",
        BLOCK_MARK,
        "# A deployed release runs with the variables of <root>/shared/.env; without them",
        "# (local development) the values above stay.",
    ]
    imports = []
    module = facts.settings_files[0]
    source = SettingsSource(module, texts[module])
    uses_os = any(line.startswith("if os.environ") or "os.path" in line for line in lines)
    if uses_os and not source.imports_module("os"):
        imports.append("import os")
    if any("environ.Env" in line for line in lines) and not source.imports_module("environ"):
        imports += ["", "import environ"] if imports else ["import environ"]
    block = [*head, *imports, *([""] if imports else []), *lines]
    while block and not block[-1]:
        block.pop()
    text = texts[module]
    texts[module] = text.rstrip("\n") + "\n" + "\n".join(block) + "\n"


def _environments(
    plan: Plan, env_names: list[str], server: str, base: Path, first_port: int
) -> dict[str, Any]:
    """The DJANGO_CD environments to add (none when the settings define DJANGO_CD)."""
    facts = plan.facts
    existing = facts.environments
    if existing or _defined(_read(facts), "DJANGO_CD"):
        missing = [name for name in env_names if name not in existing]
        if missing:
            entries = _render_environments(
                _new_environments(facts, missing, server, base, first_port, plan.backup),
                server,
                facts,
            )
            plan.manual.append(
                ManualEdit(
                    facts.settings_files[0],
                    "\n".join(entries) + "\n",
                    f"DJANGO_CD is already set: add these environments to its ENVIRONMENTS "
                    f"({', '.join(missing)})",
                )
            )
        return {}
    return _new_environments(facts, env_names, server, base, first_port, plan.backup)


def _new_environments(
    facts: ProjectFacts,
    env_names: list[str],
    server: str,
    base: Path,
    first_port: int,
    backup: bool,
) -> dict[str, Any]:
    environments: dict[str, Any] = {}
    port = first_port - 1
    for name in env_names:
        port = _free_port(port + 1)
        bind = f"127.0.0.1:{port}"
        environment: dict[str, Any] = {
            "settings": facts.settings_module,
            "root": str(base / name),
            "manage": facts.manage,
            "requirements": facts.requirements[0]
            if facts.requirements
            else new_requirements_path(facts),
            "urls": [f"http://{bind}{facts.url_path}"],
        }
        if server == "command":
            environment["server"] = {
                "type": "command",
                "reload": f"sudo systemctl reload {facts.name}-{name}",
            }
        else:
            environment["server"] = {
                "type": server,
                "bind": bind,
                "wsgi": facts.wsgi_module or f"{facts.settings_module.rpartition('.')[0]}.wsgi",
            }
        if not backup:
            environment["backup"] = "never"
        environments[name] = environment
    return environments


def _free_port(start: int) -> int:
    for port in range(start, 65536):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ProjectError(f"No free port on 127.0.0.1 from {start}: pass --port.")


def _render_django_cd(environments: dict[str, Any], server: str, facts: ProjectFacts) -> list[str]:
    return [
        "DJANGO_CD = {",
        '    "ENVIRONMENTS": {',
        *(f"    {line}" for line in _render_environments(environments, server, facts)),
        "    },",
        "}",
    ]


def _render_environments(
    environments: dict[str, Any], server: str, facts: ProjectFacts
) -> list[str]:
    lines: list[str] = []
    for name, environment in environments.items():
        lines.append(f"    {json.dumps(name)}: {{")
        for key, value in environment.items():
            comment = ""
            if key == "backup":
                lines += [
                    "        # Backups before migrations: add django-cd-deploy[backup] to the",
                    '        # requirements and "dbbackup" to INSTALLED_APPS, then remove this.',
                ]
            elif key == "server" and server == "command":
                comment = "  # your service's reload command"
            rendered = json.dumps(value) if key != "server" else _inline(value)
            lines.append(f"        {json.dumps(key)}: {rendered},{comment}")
        lines.append("    },")
    return lines


def _inline(value: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()) + "}"
