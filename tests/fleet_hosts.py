"""A fleet of real SSH test hosts: one Debian ``sshd`` per host on a loopback port,
each host with its own deploy root and its own gunicorn port, all sharing one
database, as a fleet behind a load balancer does.

Every host is this machine (sshd logs in the user running the tests), so a test
reads what the engine did on a host with ``pathlib`` too. ``Fleet`` writes the
environment's ``hosts`` into the scratch project's settings and commits them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.pipeline_support import Project, commit_all, free_port, get
from tests.sshd_support import SSHServer


@dataclass
class FleetHost:
    """One host of the fleet: its sshd, deploy root and app server port."""

    server: SSHServer
    root: Path
    port: int

    @property
    def address(self) -> str:
        return f"{self.server.user}@127.0.0.1:{self.server.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def current(self) -> str | None:
        link = self.root / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def get(self) -> tuple[int, str | None]:
        status, release, _ = get(self.url)
        return status, release

    def history(self) -> list[dict[str, Any]]:
        path = self.root / "history.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def releases(self) -> list[str]:
        folder = self.root / "releases"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Fleet:
    """``count`` SSH hosts and a scratch project whose ``staging`` deploys to them."""

    def __init__(self, base: Path, count: int, venvs: Path, **options: Any) -> None:
        self.base = base
        self.known_hosts = base / "known_hosts"
        self.hosts: list[FleetHost] = []
        for number in range(count):
            server = SSHServer(base / f"sshd-{number + 1}")
            self.hosts.append(FleetHost(server, base / f"host-{number + 1}", free_port()))
        self.project = Project(base / "project", envs=(), venvs=None)
        self.project.ports = {"staging": self.hosts[0].port}  # server stop and url()
        self.database = base / "database" / "db.sqlite3"
        self.database.parent.mkdir(parents=True)
        secret = secrets.token_urlsafe(48)
        for host in self.hosts:
            host.server.start()
            self._prepare_root(host, venvs, secret)
        self.known_hosts.write_text(
            "".join(host.server.known_hosts.read_text() for host in self.hosts)
        )
        self.options = options
        #: DJANGO_CD's keys beside ENVIRONMENTS.
        self.settings: dict[str, Any] = {"KEEP_RELEASES": 3}
        self.configure(**options)

    def entry(self, host: FleetHost) -> dict[str, Any]:
        return {
            "host": host.address,
            "root": str(host.root),
            "key_file": str(host.server.client_key),
            "known_hosts": str(self.known_hosts),
            "connect_timeout": 3,
            # The interpreter of the prebuilt venvs: the same venv hash, nothing to build.
            "python": sys.executable,
            "server": {"bind": f"127.0.0.1:{host.port}"},
        }

    def configure(self, **options: Any) -> None:
        """Write the staging environment (these options over the fleet's) and commit."""
        staging = {
            "settings": "settings.staging",
            "root": str(self.base / "no-such-root"),  # each host has its own
            "manage": "sampleproject/manage.py",
            "requirements": "sampleproject/requirements.txt",
            "server": {
                "type": "gunicorn",
                "bind": "127.0.0.1:1",
                "wsgi": "notesboard.wsgi",
                "workers": 1,
                "timeout": 20,
            },
            "hosts": [self.entry(host) for host in self.hosts],
            **options,
        }
        if "hosts_file" in options or "hosts_command" in options:
            del staging["hosts"]
        (self.project.repo / "settings" / "cdtest.py").write_text(
            textwrap.dedent(
                f"""\
                from .dev import *

                DJANGO_CD = {{**{self.settings!r}, "ENVIRONMENTS": {{"staging": {staging!r}}}}}
                """
            )
        )
        commit_all(self.project.repo, "The fleet")

    def _prepare_root(self, host: FleetHost, venvs: Path, secret: str) -> None:
        shared = host.root / "shared"
        shared.mkdir(parents=True)
        values = {
            "DJANGO_SECRET_KEY": secret,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_DIR": str(shared / "log"),
        }
        self.write_env(host, **values)
        target = host.root / "venvs"
        target.mkdir()
        for built in venvs.iterdir():
            if (built / ".django-cd-complete").exists():
                (target / built.name).symlink_to(built.resolve())

    @staticmethod
    def write_env(host: FleetHost, **values: str) -> None:
        path = host.root / "shared" / ".env"
        old = dict(
            line.split("=", 1) for line in (path.read_text() if path.exists() else "").split("\n")
            if "=" in line
        )  # fmt: skip
        path.write_text("".join(f"{k}={v}\n" for k, v in {**old, **values}.items()))

    def deploy(self, *args: str) -> tuple[int, dict[str, Any], str]:
        return self.project.deploy("staging", *args)

    def start_deploy(self) -> subprocess.Popen[str]:
        """``deploy --env=staging`` in the background, in a process group of its own."""
        environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
        environ.update(PYTHONUNBUFFERED="1")  # each step's line as it ends
        environ.pop("COVERAGE_PROCESS_START", None)
        manage = self.project.repo / "sampleproject" / "manage.py"
        return subprocess.Popen(
            [sys.executable, str(manage), "deploy", "--env=staging"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environ,
            start_new_session=True,
        )

    def manage(self, *args: str) -> Any:
        return self.project.manage(*args)

    def currents(self) -> list[str | None]:
        return [host.current() for host in self.hosts]

    def answers(self) -> list[tuple[int, str | None]]:
        return [host.get() for host in self.hosts]

    def stop(self) -> None:
        """Every app server and sshd of the fleet, whatever the test left running."""
        for host in self.hosts:
            for pidfile in (host.root / "shared").glob("run/*.pid"):
                with contextlib.suppress(ValueError, OSError):
                    os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            for state in (host.root / "shared").glob("run/role-*.json"):  # role processes
                with contextlib.suppress(ValueError, OSError, KeyError):
                    os.kill(int(json.loads(state.read_text())["pid"]), signal.SIGKILL)
            host.server.stop()
