"""A scratch sample project with staging and live, the rules of the gates set per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.pipeline_support import Project, commit_all, git

RUN_NOTHING = {"type": "none"}


class GatedProject(Project):
    """The sample project; live promotes from staging unless a test says otherwise.

    No app server and no URL: the gates are under test, not the switch.
    """

    def __init__(
        self,
        base: Path,
        live: dict[str, Any] | None = None,
        staging: dict[str, Any] | None = None,
        server: str = "none",
        venvs: Path | None = None,
    ) -> None:
        self.fields = {
            "staging": staging or {},
            "live": {"promote_from": "staging", **(live or {})},
        }
        super().__init__(base, envs=("staging", "live"), server=server, venvs=venvs)

    def _write_settings(self) -> None:
        envs = {
            name: {
                "settings": f"settings.{name}",
                "root": str(self.root(name)),
                "manage": "sampleproject/manage.py",
                "requirements": "sampleproject/requirements.txt",
                **self._server(name),
                **self.fields[name],
            }
            for name in ("staging", "live")
        }
        (self.repo / "settings" / "cdtest.py").write_text(
            textwrap.dedent(
                f"""\
                from .dev import *

                DJANGO_CD = {{"KEEP_RELEASES": 3, "ENVIRONMENTS": {envs!r}}}
                """
            )
        )

    def _server(self, env: str) -> dict[str, Any]:
        if self.server == "none":
            return {"server": RUN_NOTHING}
        return {
            "urls": [self.url(env)],
            "server": {
                "type": self.server,
                "bind": f"127.0.0.1:{self.ports[env]}",
                "wsgi": "notesboard.wsgi",
                "workers": 1,
                "timeout": 20,
            },
        }

    def set_fields(self, env: str, **fields: Any) -> str:
        """Change an environment's fields and commit; the new HEAD."""
        self.fields[env].update(fields)
        self._write_settings()
        return commit_all(self.repo, f"Settings of {env}")

    def run_tests(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``manage.py test`` of the sample project, from its own directory, as CI runs it."""
        environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.test"}
        environ.pop("COVERAGE_PROCESS_START", None)
        return subprocess.run(
            [sys.executable, "manage.py", "test", *args],
            cwd=self.repo / "sampleproject",
            capture_output=True,
            text=True,
            env=environ,
            timeout=600,
            check=False,
        )

    def head(self) -> str:
        return git(self.repo, "rev-parse", "HEAD").strip()

    def predeploy(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        done = self.manage("predeploy", *args, env=env)
        return done.returncode, done.stdout, done.stderr

    def predeploy_json(self, *args: str) -> tuple[int, dict[str, Any]]:
        done = self.manage("predeploy", "--json", *args)
        return done.returncode, json.loads(done.stdout)
