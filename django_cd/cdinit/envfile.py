"""``<root>/shared/.env`` templates: the variables the settings read, names and hints
only, never a value; an existing file is never touched."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django_cd.cdinit.changes import FileChange
from django_cd.cdinit.facts import ProjectFacts
from django_cd.cdinit.source import SettingsSource, environment_reads
from django_cd.env import ENGINE_VARIABLES


@dataclass
class EnvFiles:
    """The templates to write, the ``.env`` file of each environment, and notes."""

    changes: list[FileChange] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def env_templates(
    facts: ProjectFacts, texts: dict[Path, str], environments: dict[str, Any]
) -> EnvFiles:
    """A template for each environment (``facts``' and the new ``environments``) whose
    ``shared/.env`` does not exist, listing the variables ``texts`` (the settings files
    as cdinit leaves them) read."""
    found = EnvFiles()
    roots = {name: str(env.get("root", "")) for name, env in facts.environments.items()}
    roots.update({name: env["root"] for name, env in environments.items()})
    variables: list[str] = []
    for path, text in texts.items():
        for name in SettingsSource(path, text).environment_variables():
            if name not in variables and name not in ENGINE_VARIABLES:
                variables.append(name)
    database_variables = _database_variables(texts)
    for env_name, root in roots.items():
        if not root or not os.path.isabs(root):
            continue
        path = Path(root) / "shared" / ".env"
        found.paths[env_name] = path
        if path.exists():
            found.notes.append(f"{path} exists: left as it is.")
            continue
        body = [
            f"# The {env_name} environment of {facts.name}: every process of a release",
            "# (manage.py commands, the app server) runs with these variables.",
            "# Give each a value. Never commit this file.",
        ]
        for variable in variables:
            body.append("")
            hint = _hint(variable, root, facts, variable in database_variables)
            if hint:
                body.append(f"# {hint}")
            body.append(f"{variable}=")
        found.changes.append(FileChange(path, None, "\n".join(body) + "\n", mode=0o600))
    return found


def _database_variables(texts: dict[Path, str]) -> set[str]:
    found: set[str] = set()
    for path, text in texts.items():
        source = SettingsSource(path, text)
        for node in source.assignments("DATABASES"):
            value = getattr(node, "value", None)
            if value is not None:
                found.update(environment_reads(value))
    return found


def _hint(variable: str, root: str, facts: ProjectFacts, database: bool) -> str:
    shared = f"{root}/shared"
    upper = variable.upper()
    if upper.endswith("DATABASE_URL") or (database and "URL" in upper):
        return (
            f"{variable}: outside the release, e.g. sqlite:///{shared}/db.sqlite3 "
            "(or postgres://user:password@host:5432/name)"
        )
    if database and "sqlite" in str(facts.database.get("ENGINE", "")):
        return f"{variable}: outside the release, e.g. {shared}/db.sqlite3"
    if "SECRET" in upper:
        return (
            f"{variable}: a long random string, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if "DEBUG" in upper:
        return f"{variable}: false on a deployed site"
    if "ALLOWED_HOSTS" in upper:
        return f"{variable}: the site's host names, comma-separated, e.g. 127.0.0.1,localhost"
    if "MEDIA" in upper:
        return f"{variable}: outside the release, e.g. {shared}/media"
    return ""
