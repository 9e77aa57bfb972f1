"""The requirement line a release needs, added to the project's requirements file
(or a new ``requirements.txt``)."""

from __future__ import annotations

import re
from pathlib import Path

import django

from django_cd.cdinit.changes import FileChange
from django_cd.cdinit.facts import ProjectFacts

DISTRIBUTION = "django-cd-deploy"


def new_requirements_path(facts: ProjectFacts) -> str:
    """Where a project without requirements gets its file: beside ``manage.py``."""
    directory = facts.manage_py.parent.relative_to(facts.repo_root).as_posix()
    return "requirements.txt" if directory == "." else f"{directory}/requirements.txt"


def _requirement_line(server: str, backup: bool) -> str:
    extras = [*([server] if server != "command" else [])]
    if backup:
        extras.append("backup")
    return DISTRIBUTION + (f"[{','.join(extras)}]" if extras else "")


def requirements_change(facts: ProjectFacts, server: str, backup: bool) -> FileChange | None:
    """The requirement line added to the first requirements file, a new file when
    there is none, or None when django-cd-deploy is required already."""
    line = _requirement_line(server, backup)
    if facts.requirements:
        path = facts.repo_root / facts.requirements[0]
        text = path.read_text(encoding="utf-8")
        if _requires(path, DISTRIBUTION, set()):
            return None
        new = text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
        return FileChange(path, text, new)
    path = facts.repo_root / new_requirements_path(facts)
    lines = [
        "# What a deployed release installs (pip install -r, in the release). Written by",
        "# manage.py cdinit: add your project's own requirements.",
        f"Django~={django.__version__}",
        line,
    ]
    engine = str(facts.database.get("ENGINE", ""))
    if "postgresql" in engine:
        lines.append("psycopg[binary]")
    elif "mysql" in engine:
        lines.append("mysqlclient")
    return FileChange(path, None, "\n".join(lines) + "\n")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requires(path: Path, distribution: str, seen: set[Path]) -> bool:
    """True when the requirements file (or one it includes) installs ``distribution``,
    by name or from a path or URL that names it (a wheel, a checkout)."""
    if path in seen or not path.is_file():
        return False
    seen.add(path)
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] in ("-r", "--requirement") and len(words) > 1:
            if _requires(path.parent / words[1], distribution, seen):
                return True
            continue
        if distribution in _normal(line):
            return True
    return False
