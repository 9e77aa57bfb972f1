"""A tiny real Django project in a temp dir, run through real ``manage.py`` subprocesses.

Used by the version-file tests: the project has its own ``BASE_DIR`` (the
temp dir), a SQLite file database, and apps whose migrations the tests create
with the real ``makemigrations``.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tests.tempproject import MANAGE_PY, Run, run_manage

SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "miniproject-tests-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_cd", {apps}]
DATABASES = {{
    "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
DJANGO_CD = {django_cd}
"""


@dataclass
class MiniProject:
    root: Path

    @classmethod
    def create(cls, root: Path, apps: dict[str, str], django_cd: str = "{}") -> MiniProject:
        """Write manage.py, proj/settings.py and one package per app (its models.py)."""
        root.mkdir(parents=True, exist_ok=True)
        (root / "manage.py").write_text(MANAGE_PY)
        (root / "proj").mkdir()
        (root / "proj" / "__init__.py").write_text("")
        labels = ", ".join(repr(label) for label in apps)
        (root / "proj" / "settings.py").write_text(
            SETTINGS.format(apps=labels, django_cd=django_cd)
        )
        (root / ".gitignore").write_text("db.sqlite3\n__pycache__/\n")
        project = cls(root)
        for label, models in apps.items():
            (root / label).mkdir()
            (root / label / "__init__.py").write_text("")
            project.write_models(label, models)
        return project

    def write_models(self, label: str, models: str) -> None:
        (self.root / label / "models.py").write_text(textwrap.dedent(models))

    def migrations(self, label: str) -> list[str]:
        directory = self.root / label / "migrations"
        return sorted(p.stem for p in directory.glob("[0-9]*.py"))

    def version(self, label: str) -> str:
        return (self.root / label / "migrations" / "version.txt").read_text()

    def manage(self, *args: str, check: bool = True) -> Run:
        """Run ``manage.py ARGS`` with this interpreter; fail loudly unless check=False."""
        result = run_manage(self.root, *args, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result}")
        return result

    def git(self, *args: str, check: bool = True) -> Run:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        completed = subprocess.run(
            ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=60
        )
        result = Run(completed.returncode, completed.stdout, completed.stderr)
        if check and completed.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{result}")
        return result
