"""Real throwaway Django projects in temp git repositories, run through manage.py."""

from __future__ import annotations

import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tests.tempproject import MANAGE_PY, Run, run_manage

SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "pipeline-tests-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_cd", "shop"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TEST_RUNNER = {runner!r}
{extra}
"""


@dataclass
class Project:
    """A temp project: ``proj`` settings, a ``shop`` app, tests under ``shop/tests``."""

    root: Path

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def commit(self, message: str = "change") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def manage(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return run_manage(self.root, *args, env=env)

    def result(self, sha: str, pipeline: str, *, local: bool = False) -> dict[str, object]:
        name = f"{pipeline}.local.json" if local else f"{pipeline}.json"
        data: dict[str, object] = json.loads((self.root / ".cd/results" / sha / name).read_text())
        return data


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def make_project(
    root: Path,
    tests: dict[str, str],
    *,
    runner: str = "django_cd.testing.PipelineRunner",
    settings_extra: str = "",
    files: dict[str, str] | None = None,
) -> Project:
    """Write the project, ``git init`` it and commit everything."""
    project = Project(root)
    project.write("manage.py", MANAGE_PY)
    project.write("proj/__init__.py", "")
    project.write(
        "proj/settings.py", SETTINGS.format(runner=runner, extra=textwrap.dedent(settings_extra))
    )
    project.write("shop/__init__.py", "")
    project.write("shop/tests/__init__.py", "")
    project.write(".gitignore", "__pycache__/\n.coverage*\n")
    for name, text in tests.items():
        project.write(f"shop/tests/{name}", text)
    for name, text in (files or {}).items():
        project.write(name, text)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.com")
    git(root, "config", "user.name", "CI")
    project.commit("initial")
    return project
