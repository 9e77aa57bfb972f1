"""What cdinit finds out about a project: where its parts are and what its settings hold.

Read from the running settings (``django.conf.settings``, as ``manage.py``
loaded them) and from the files: the git repository, ``manage.py``, the
settings module's file, the requirements files.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from django_cd.cdinit.source import SettingsSource


class ProjectError(Exception):
    """The project cannot be set up as it is: the message says why and what to do."""


@dataclass
class ProjectFacts:
    """One project, as cdinit sees it."""

    manage_py: Path
    repo_root: Path
    settings_module: str
    #: The settings module's own file, and the files it star-imports (split settings).
    settings_files: list[Path]
    wsgi_module: str | None
    asgi_module: str | None
    requirements: list[str]
    database: dict[str, Any]
    static_root: str | None
    media_root: str | None
    installed_apps: list[str]
    middleware: list[str]
    url_path: str
    environments: dict[str, Any] = field(default_factory=dict)

    @property
    def manage(self) -> str:
        """``manage.py`` relative to the repository root."""
        return self.manage_py.relative_to(self.repo_root).as_posix()

    @property
    def name(self) -> str:
        """The project's name for paths: its repository directory's name."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.repo_root.name).strip("-") or "project"

    def inside_repo(self, path: Any) -> bool:
        if not path or str(path) == ":memory:" or str(path).startswith("file:"):
            return False
        return Path(path).resolve().is_relative_to(self.repo_root)

    def sources(self) -> list[SettingsSource]:
        return [SettingsSource(path) for path in self.settings_files]


def find_manage_py(start: Path | None = None) -> Path:
    """The project's ``manage.py``: the running script's when it is one, else the one
    in ``start`` (the current directory), else beside ``BASE_DIR``."""
    candidates = []
    if sys.argv and Path(sys.argv[0]).name == "manage.py":
        candidates.append(Path(sys.argv[0]))
    candidates.append((start or Path.cwd()) / "manage.py")
    base = getattr(settings, "BASE_DIR", None)
    if base:
        candidates.append(Path(base) / "manage.py")
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ProjectError(
        f"No manage.py in {start or Path.cwd()}: cdinit sets up the project of a manage.py. "
        "Fix: run it from the directory that holds your project's manage.py."
    )


def repository_root(path: Path) -> Path:
    """The root of the git work tree holding ``path``."""
    try:
        result = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise ProjectError("git is not installed: django-cd deploys git commits.") from None
    if result.returncode != 0:
        raise ProjectError(
            f"{path} is not in a git repository: django-cd deploys commits of one. Fix: "
            "git init && git add -A && git commit -m 'First commit' (in the project's "
            "directory), then run cdinit again."
        )
    return Path(result.stdout.strip()).resolve()


def inspect_project(manage_py: Path | None = None) -> ProjectFacts:
    """Everything cdinit needs to know about the project whose settings are loaded."""
    manage_py = (manage_py or find_manage_py()).resolve()
    if not manage_py.is_file():
        raise ProjectError(
            f"No manage.py at {manage_py}. Fix: run cdinit from your project's directory."
        )
    repo_root = repository_root(manage_py.parent)
    module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
    # Only the repository's files are the project's to edit (never an installed package's).
    files = [path for path in settings_files(module) if path.is_relative_to(repo_root)]
    if not files:
        raise ProjectError(
            f"The settings module {module} is not a file of the repository {repo_root}: "
            "cdinit edits only the project's own files. Fix: run it with the project's "
            "settings (DJANGO_SETTINGS_MODULE, or the one manage.py names)."
        )
    database = dict(settings.DATABASES.get("default", {}))
    return ProjectFacts(
        manage_py=manage_py,
        repo_root=repo_root,
        settings_module=module,
        settings_files=files,
        wsgi_module=_module_of(getattr(settings, "WSGI_APPLICATION", None)),
        asgi_module=_module_of(getattr(settings, "ASGI_APPLICATION", None))
        or _asgi_beside(module),
        requirements=requirement_files(repo_root, manage_py.parent),
        database=database,
        static_root=str(settings.STATIC_ROOT) if getattr(settings, "STATIC_ROOT", None) else None,
        media_root=str(settings.MEDIA_ROOT) if getattr(settings, "MEDIA_ROOT", None) else None,
        installed_apps=list(settings.INSTALLED_APPS),
        middleware=list(getattr(settings, "MIDDLEWARE", [])),
        url_path=_answering_path(),
        environments=_environments(getattr(settings, "DJANGO_CD", {})),
    )


def _environments(config: Any) -> dict[str, Any]:
    """``DJANGO_CD["ENVIRONMENTS"]`` as far as it is a dict (``check`` reports the rest)."""
    environments = config.get("ENVIRONMENTS") if isinstance(config, dict) else None
    return dict(environments) if isinstance(environments, dict) else {}


def settings_files(module: str) -> list[Path]:
    """The settings module's file, then the files of the modules it star-imports."""
    found: list[Path] = []
    pending = [module]
    while pending:
        name = pending.pop(0)
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        path = Path(spec.origin).resolve()
        if path in found:
            continue
        found.append(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in SettingsSource(path).star_imports():
            pending.append(importlib.util.resolve_name(imported, package or None))
    return found


def requirement_files(repo_root: Path, project_dir: Path) -> list[str]:
    """``requirements*.txt`` files of the project, relative to the repository root,
    the most likely to be the deployed one first."""
    found: list[Path] = []
    for base in dict.fromkeys([repo_root, project_dir]):
        found += sorted(base.glob("requirements*.txt")) + sorted(base.glob("requirements/*.txt"))
    preference = ("requirements.txt", "production.txt", "prod.txt", "deploy.txt", "base.txt")

    def rank(path: Path) -> tuple[int, str]:
        name = path.name
        return (preference.index(name) if name in preference else len(preference), str(path))

    unique = sorted(dict.fromkeys(p.resolve() for p in found), key=rank)
    return [p.relative_to(repo_root).as_posix() for p in unique if p.is_relative_to(repo_root)]


def _module_of(dotted: str | None) -> str | None:
    return dotted.rpartition(".")[0] or None if dotted else None


def _asgi_beside(settings_module: str) -> str | None:
    """``mysite.asgi`` beside ``mysite.settings``, as startproject writes it."""
    package = settings_module.rpartition(".")[0]
    candidate = f"{package}.asgi" if package else "asgi"
    try:
        return candidate if importlib.util.find_spec(candidate) else None
    except (ImportError, ValueError):
        return None


def _answering_path() -> str:
    """A path the site answers without a user: ``/`` when the URLconf has it, else the
    admin's index (it redirects to the login page), else ``/``."""
    try:
        resolve("/")
        return "/"
    except Resolver404:
        pass
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return "/"
