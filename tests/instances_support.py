"""A scratch project with staging and a ``testing`` template of instances (issue 15)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
from pathlib import Path
from typing import Any

from tests.pipeline_support import Project, commit_all, git

PG = "postgres://postgres@127.0.0.1:5432/"


def free_port_range(size: int = 8) -> tuple[int, int]:
    """``size`` consecutive ports that are free now (bound at random, then checked)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = int(sock.getsockname()[1])
        if first + size > 65000:
            continue
        if all(_free(port) for port in range(first, first + size)):
            return first, first + size - 1
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class InstanceProject(Project):
    """``staging`` deployed as usual, and ``testing``: a template whose instances copy it.

    ``engine`` is "sqlite" or "postgresql"; for PostgreSQL ``staging_db`` names the
    staging database and instances are ``<prefix>_<name>``.
    """

    def __init__(
        self,
        base: Path,
        engine: str = "sqlite",
        venvs: Path | None = None,
        **instances: Any,
    ) -> None:
        self.engine = engine
        self.prefix = f"cdi{secrets.token_hex(3)}"
        self.staging_db = f"{self.prefix}_staging"
        self.port_range = free_port_range()
        self.instance_options = instances
        super().__init__(base, envs=("staging",), venvs=venvs)
        if engine == "postgresql":
            self.write_env_file("staging", DATABASE_URL=PG + self.staging_db)
        if venvs is not None:  # the template's venv pool: built once per session
            self.link_venvs("testing", venvs)
        self.write_env_file("testing", DATABASE_URL=self.template_database_url)

    @property
    def template_database_url(self) -> str:
        if self.engine == "postgresql":
            return PG + f"{self.prefix}_template"
        return f"sqlite:///{self.root('testing') / 'shared' / 'unused.sqlite3'}"

    def instance_database(self, name: str) -> str:
        if self.engine == "postgresql":
            return f"{self.prefix}_{name}"
        return str(self.root("testing") / name / "shared" / f"db-{name}.sqlite3")

    def _write_settings(self) -> None:
        super()._write_settings()
        path = self.repo / "settings" / "cdtest.py"
        database = (
            f"{self.prefix}_{{name}}" if self.engine == "postgresql" else "db-{name}.sqlite3"
        )
        template = {
            "settings": "settings.staging",
            "root": str(self.root("testing")),
            "manage": "sampleproject/manage.py",
            "requirements": "sampleproject/requirements.txt",
            "server": {"type": "gunicorn", "wsgi": "notesboard.wsgi", "workers": 1, "timeout": 20},
            "instances": {
                "ports": list(self.port_range),
                "database": database,
                "database_from": "staging",
                **self.instance_options,
            },
        }
        path.write_text(
            path.read_text() + f"\nDJANGO_CD['ENVIRONMENTS']['testing'] = {template!r}\n"
        )

    def instance(self, *args: str, timeout: float = 600) -> tuple[int, Any, str]:
        """``manage.py instance ...``: exit status, the JSON printed (if any), stderr."""
        result = self.manage("instance", *args, timeout=timeout)
        out = result.stdout.strip()
        data = json.loads(out) if out.startswith(("{", "[")) else out
        return result.returncode, data, result.stderr

    def stop_servers(self) -> None:
        super().stop_servers()
        code, rows, _ = self.instance("list", "--env=testing", "--json", timeout=60)
        for row in rows if code == 0 and isinstance(rows, list) else []:
            self.manage("server", "stop", f"--env={row['env']}", timeout=60)
        # Should the command itself be what broke, no instance's daemon outlives the test.
        for pidfile in self.root("testing").glob("*/shared/run/*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


def branch_from(project: Project, name: str, base: str, files: dict[str, str]) -> str:
    """Commit ``files`` on a new branch ``name`` from ``base``; back to main."""
    from tests.pipeline_support import write_file

    git(project.repo, "checkout", "-q", "-B", name, base)
    for path, content in files.items():
        write_file(project.repo / path, content)
    sha = commit_all(project.repo, f"Branch {name}")
    git(project.repo, "checkout", "-q", "main")
    return sha


def add_testing_template(project: Project, **instances: Any) -> tuple[int, int]:
    """Give ``project`` (any scratch project) the ``testing`` template, committed, with
    its ``shared/.env`` (SQLite instances copying staging). Returns the port range."""
    ports = free_port_range()
    template = {
        "settings": "settings.staging",
        "root": str(project.root("testing")),
        "manage": "sampleproject/manage.py",
        "requirements": "sampleproject/requirements.txt",
        "server": {"type": "gunicorn", "wsgi": "notesboard.wsgi", "workers": 1, "timeout": 20},
        "instances": {
            "ports": list(ports),
            "database": "db-{name}.sqlite3",
            "database_from": "staging",
            **instances,
        },
    }
    path = project.repo / "settings" / "cdtest.py"
    path.write_text(path.read_text() + f"\nDJANGO_CD['ENVIRONMENTS']['testing'] = {template!r}\n")
    commit_all(project.repo, "A testing template")
    project.write_env_file("testing")
    return ports
