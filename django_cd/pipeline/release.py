"""A ``Release``: one release directory on a host, and running its ``manage.py``."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from django_cd.conf import Environment
from django_cd.pipeline.host import CommandResult, Host
from django_cd.pipeline.layout import Layout

VENV_LINK = ".venv"
# Variables of the deploying process that must not leak into a release's commands.
_DROPPED_VARIABLES = ("DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Release:
    """Release ``id`` of ``env`` on ``host``."""

    env: Environment
    host: Host
    layout: Layout
    id: str
    #: Where the code is when not under ``releases/`` (a dry run's scratch copy).
    location: str | None = None

    @property
    def path(self) -> str:
        return self.location or self.layout.release(self.id)

    @property
    def venv(self) -> str:
        return posixpath.join(self.path, VENV_LINK)

    @property
    def python(self) -> str:
        return posixpath.join(self.venv, "bin", "python")

    @property
    def manage_py(self) -> str:
        return posixpath.join(self.path, self.env.manage)

    @property
    def project_dir(self) -> str:
        """The directory of ``manage.py``: where the WSGI module imports from."""
        return posixpath.dirname(self.manage_py)

    def process_env(self) -> dict[str, str]:
        """The environment a release's commands and server run with."""
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_VARIABLES}
        env["DJANGO_SETTINGS_MODULE"] = self.env.settings
        env["DJANGO_ENV_FILE"] = self.layout.env_file
        env["VIRTUAL_ENV"] = self.venv
        env["PATH"] = posixpath.join(self.venv, "bin") + os.pathsep + env.get("PATH", "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def manage(
        self, *args: str, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None
    ) -> CommandResult:
        """Run ``manage.py`` of this release with the environment's settings."""
        return self.host.run(
            [self.python, self.manage_py, *args],
            cwd=self.path,
            env=self.process_env(),
            timeout=timeout,
            stdin=stdin,
        )
