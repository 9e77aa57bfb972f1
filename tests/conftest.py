"""Fixtures shared by the deploy tests: one virtualenv built per session, and a
freshly deployed scratch project for every test that wants one."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline_support import Project


@pytest.fixture(scope="session")
def sample_venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project's release virtualenv, built once by a real first deploy."""
    project = Project(tmp_path_factory.mktemp("venv-template"))
    try:
        code, _, stderr = project.deploy()
        assert code == 0, stderr
    finally:
        project.stop_servers()
    return project.root("staging") / "venvs"


@dataclass
class Deployed:
    """A scratch project whose first deploy to staging succeeded."""

    project: Project
    first: dict[str, Any]

    @property
    def release(self) -> str:
        return str(self.first["release"])


def make_project(base: Path, venvs: Path, **options: Any) -> Project:
    return Project(base, venvs=venvs, **options)


@pytest.fixture
def staging(tmp_path: Path, sample_venvs: Path) -> Iterator[Deployed]:
    """A new project with staging deployed once (gunicorn serving on loopback)."""
    project = make_project(tmp_path, sample_venvs)
    try:
        code, data, stderr = project.deploy()
        assert code == 0, stderr
        yield Deployed(project, data)
    finally:
        stop(project)


def stop(project: Project) -> None:
    """Stop every server of the project, even if what the test broke is the command."""
    project.stop_servers()
    for pidfile in project.deploy_dir.glob("*/shared/run/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
