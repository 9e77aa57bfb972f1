"""Real parts for the deploy tests: a scratch git repository of the sample project,
deploy roots in temp dirs, free loopback ports, and HTTP probes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# What a release of the sample project needs from this checkout.
PROJECT_PARTS = ("django_cd", "settings", "sampleproject")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "var", "*.sqlite3")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def set_title(project: Project, title: str) -> str:
    """Commit a code-only change to the sample project: the board's title."""
    views = project.repo / "sampleproject" / "notes" / "views.py"
    text = views.read_text()
    start = text.index('BOARD_TITLE = "') + len('BOARD_TITLE = "')
    views.write_text(text[:start] + title + text[text.index('"', start) :])
    return commit_all(project.repo, f"Title: {title}")


class Project:
    """A scratch git repository of the sample project with its own deploy roots.

    ``venvs``: a directory of virtualenvs built by an earlier project (see the
    ``sample_venvs`` fixture); each is linked into every deploy root, so a deploy
    of unchanged requirements reuses it instead of running pip for a minute.
    """

    def __init__(
        self,
        base: Path,
        envs: tuple[str, ...] = ("staging",),
        server: str = "gunicorn",
        venvs: Path | None = None,
        processes: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.server = server
        self.processes = processes
        #: More keys for every environment's definition (e.g. backup_compression).
        self.options = options or {}
        self.repo = base / "repo"
        self.deploy_dir = base / "deploy"
        self.ports = {name: free_port() for name in envs}
        self.repo.mkdir(parents=True)
        for part in PROJECT_PARTS:
            shutil.copytree(REPO_ROOT / part, self.repo / part, ignore=IGNORE)
        self._write_settings()
        if server == "uwsgi":
            requirements = self.repo / "sampleproject" / "requirements.txt"
            requirements.write_text(requirements.read_text() + "pyuwsgi>=2.0\n")
        (self.repo / ".gitignore").write_text("__pycache__/\n*.pyc\nvar/\n")
        git(self.repo, "init", "-q", "-b", "main")
        git(self.repo, "config", "user.name", "Dee Ployer")
        git(self.repo, "config", "user.email", "dee@example.com")
        commit_all(self.repo, "Sample project")
        for name in envs:
            self.write_env_file(name)
            if venvs is not None:
                self.link_venvs(name, venvs)

    def link_venvs(self, env: str, venvs: Path) -> None:
        target = self.root(env) / "venvs"
        target.mkdir(parents=True, exist_ok=True)
        for built in venvs.iterdir():
            if (built / ".django-cd-complete").exists() and not (target / built.name).exists():
                (target / built.name).symlink_to(built.resolve())

    def root(self, env: str) -> Path:
        return self.deploy_dir / env

    def url(self, env: str) -> str:
        return f"http://127.0.0.1:{self.ports[env]}/"

    def _write_settings(self) -> None:
        envs = {
            name: {
                "settings": f"settings.{'live' if name == 'live' else 'staging'}",
                "root": str(self.root(name)),
                "manage": "sampleproject/manage.py",
                "requirements": "sampleproject/requirements.txt",
                "urls": [self.url(name)],
                "server": {
                    "type": self.server,
                    "bind": f"127.0.0.1:{port}",
                    "wsgi": "notesboard.wsgi",
                    "workers": 1,
                    "timeout": 20,
                },
            }
            for name, port in self.ports.items()
        }
        if self.processes is not None:  # issue 14 §7: role processes
            for definition in envs.values():
                definition["processes"] = self.processes
        for definition in envs.values():
            definition.update(self.options)
        (self.repo / "settings" / "cdtest.py").write_text(
            textwrap.dedent(
                f"""\
                from .dev import *

                DJANGO_CD = {{"KEEP_RELEASES": 3, "ENVIRONMENTS": {envs!r}}}
                """
            )
        )

    def write_env_file(self, env: str, **overrides: str) -> Path:
        shared = self.root(env) / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        values = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite:///{shared / 'db.sqlite3'}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_DIR": str(shared / "log"),
            "DJANGO_CD_DEPLOY_DIR": str(self.deploy_dir),
            **overrides,
        }
        path = shared / ".env"
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items() if v is not None))
        return path

    def env_file_values(self, env: str) -> dict[str, str]:
        lines = (self.root(env) / "shared" / ".env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def manage(
        self, *args: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the deploying checkout's manage.py for real, as a user would."""
        environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest", **(env or {})}
        environ.pop("COVERAGE_PROCESS_START", None)
        return subprocess.run(
            [sys.executable, str(self.repo / "sampleproject" / "manage.py"), *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=timeout,
            check=False,
        )

    def deploy(self, env: str = "staging", *args: str) -> tuple[int, dict[str, Any], str]:
        result = self.manage("deploy", f"--env={env}", "--json", *args)
        data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
        return result.returncode, data, result.stderr

    def stop_servers(self) -> None:
        for env in self.ports:
            self.manage("server", "stop", f"--env={env}", timeout=60)
            # Should the command itself be what a test broke, no daemon outlives the test.
            for pidfile in (self.root(env) / "shared").glob("run/*.pid"):
                with contextlib.suppress(ValueError, OSError):
                    os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            for state in (self.root(env) / "shared").glob("run/role-*.json"):  # role processes
                with contextlib.suppress(ValueError, OSError, KeyError):
                    os.kill(int(json.loads(state.read_text())["pid"]), signal.SIGKILL)


def django_cd_config(project: Project) -> dict[str, Any]:
    """The project's DJANGO_CD, for deploying in-process with override_settings."""
    namespace: dict[str, Any] = {}
    source = (project.repo / "settings" / "cdtest.py").read_text()
    exec(source.replace("from .dev import *", ""), namespace)
    return {**namespace["DJANGO_CD"], "REPOSITORY": str(project.repo)}


# ``migrations.AddField("note", "colour", models.CharField(...)),`` on one line.
ADD_FIELD = re.compile(
    r"""migrations\.AddField\(["'](\w+)["'], ["'](\w+)["'], (models\.\w+\(.*\))\),?\s*$""", re.M
)


def write_file(target: Path, content: str) -> None:
    """Write a file into the project; a new migration also updates its app's version.txt,
    as django-cd's makemigrations would (the version-file check runs in every deploy),
    and the fields it adds go into the model, as when makemigrations wrote it (the
    predeploy gates refuse migrations that do not match the models)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    if target.parent.name == "migrations" and target.name[:4].isdigit():
        version = target.parent / "version.txt"
        names = [version.read_text().strip(), target.stem] if version.exists() else [target.stem]
        version.write_text(max(names) + "\n")
        models = target.parent.parent / "models.py"
        for model, name, field in ADD_FIELD.findall(content):
            text = models.read_text()
            marker = f"class {model.capitalize()}(models.Model):"
            meta = text.index("\n    class Meta:", text.index(marker))
            line = f"\n    {name} = {field}"
            if line not in text:
                models.write_text(text[:meta] + line + text[meta:])


def branch_with(project: Project, name: str, base: str, files: dict[str, str]) -> str:
    """Commit ``files`` (path -> content) on branch ``name`` from ``base``; back to main."""
    git(project.repo, "checkout", "-q", "-B", name, base)
    for path, content in files.items():
        write_file(project.repo / path, content)
    sha = commit_all(project.repo, f"Break: {name}")
    git(project.repo, "checkout", "-q", "main")
    return sha


def db_snapshot(db: Path) -> dict[str, Any]:
    """The schema, applied migrations and notes of a SQLite database.

    django_cd_deployment is left out: deploys mirror their history there.
    """
    import sqlite3

    with sqlite3.connect(db) as connection:
        schema = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'django_cd_deployment%' "
            "ORDER BY name"
        ).fetchall()
        applied = connection.execute(
            "SELECT app, name FROM django_migrations ORDER BY app, name"
        ).fetchall()
        notes = connection.execute("SELECT * FROM notes_note ORDER BY id").fetchall()
    return {"schema": schema, "migrations": applied, "notes": notes}


def get(url: str, path: str = "") -> tuple[int, str | None, str]:
    """GET once: status, X-Release header, body."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url + path, headers={"X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("X-Release"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Release"), error.read().decode()


def history(project: Project, env: str = "staging") -> list[dict[str, Any]]:
    path = project.root(env) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def current(project: Project, env: str = "staging") -> str | None:
    link = project.root(env) / "current"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None
