"""A ``Release``: one release directory on a host, and running its ``manage.py``."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from django_cd.conf import Environment
from django_cd.env import parse_env_text, project_variables
from django_cd.pipeline.files import SECRETS_MODE
from django_cd.pipeline.host import CommandResult, Host
from django_cd.pipeline.layout import Layout
from django_cd.release_checks import NEEDS_VARIABLE, RELEASE_DIR_VARIABLE, needs

VENV_LINK = ".venv"
#: The release's copy of ``shared/.env``, taken when it is deployed or rolled back to:
#: what its commands and its app server's workers run with.
ENV_SNAPSHOT = "release.env"
#: Where the app server's workers find the serving release's snapshot (``django_cd.wsgi``).
SNAPSHOT_VARIABLE = "DJANGO_CD_RELEASE_ENV"
#: What a release's processes keep of the deployer's environment, besides the
#: environment's ``inherit_env`` (names, or patterns such as ``LC_*``). The rest
#: (a CI job's tokens, a developer's ``DATABASE_URL``) never reaches a release.
INHERITED_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
)
DEFAULT_TIMEOUT = 600.0


def inherited(environ: Mapping[str, str], patterns: Iterable[str]) -> dict[str, str]:
    """The variables of ``environ`` a release keeps: the default ones and ``patterns``."""
    keep = (*INHERITED_VARIABLES, *patterns)
    return {k: v for k, v in environ.items() if any(fnmatchcase(k, p) for p in keep)}


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

    @property
    def env_snapshot(self) -> str:
        return posixpath.join(self.path, ENV_SNAPSHOT)

    def snapshot_env_file(self) -> None:
        """Copy ``shared/.env`` into the release, private: what it will run with."""
        text = _env_text(self.host, self.layout.env_file)
        self.host.write_text(self.env_snapshot, text, mode=SECRETS_MODE)

    def env_file_values(self) -> dict[str, str]:
        """The ``.env`` variables of this release: its snapshot, or ``shared/.env``
        for a release that has none yet (a dry run's scratch copy)."""
        path = self.env_snapshot
        if not self.host.exists(path):
            path = self.layout.env_file
        return read_env_values(self.host, path)

    def process_env(self, *, env_file: bool = True) -> dict[str, str]:
        """The environment a release's commands run with: defined, not inherited.

        The inherited variables (``INHERITED_VARIABLES`` and the environment's
        ``inherit_env``), then the release's ``.env`` variables (``env_file``),
        then what the engine sets (settings module, virtualenv) over both.
        """
        env = inherited(os.environ, self.env.inherit_env)
        if env_file:
            env.update(project_variables(self.env_file_values()))
        env["DJANGO_SETTINGS_MODULE"] = self.env.settings
        env[RELEASE_DIR_VARIABLE] = self.path
        env[NEEDS_VARIABLE] = needs(self.env)
        env["DJANGO_ENV_FILE"] = self.layout.env_file
        env["VIRTUAL_ENV"] = self.venv
        env["PATH"] = posixpath.join(self.venv, "bin") + os.pathsep + env.get("PATH", "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def manage(
        self, *args: str, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None
    ) -> CommandResult:
        """Run ``manage.py`` of this release with the environment's settings: in the
        release's agent when the command at work opened agents (``pipeline.agent``)."""
        if self.host.agents is not None:
            result = self.host.agents.manage(self, args, timeout, stdin)
            if result is not None:
                return result
        return self.host.run(
            [self.python, self.manage_py, *args],
            cwd=self.path,
            env=self.process_env(),
            timeout=timeout,
            stdin=stdin,
        )


def read_env_values(host: Host, path: str) -> dict[str, str]:
    """The variables of the ``.env`` file at ``path`` on ``host`` (none if it is missing)."""
    return parse_env_text(_env_text(host, path))


def _env_text(host: Host, path: str) -> str:
    return host.read_text(path) if host.exists(path) else ""
