"""Fixtures shared by the deploy tests: one virtualenv built per session, and a
freshly deployed scratch project for every test that wants one."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline_support import Project


def built_venvs(tmp_path_factory: pytest.TempPathFactory, server: str) -> Path:
    """The release virtualenvs of a real first deploy of the sample project (with
    ``server``'s requirements), built once per test run: the xdist workers share them,
    the first to ask builds them while the others wait on a lock."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's directory, above each worker's
    base = shared / f"venv-template-{server}"
    with open(shared / f"venv-template-{server}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "built").exists():
            shutil.rmtree(base, ignore_errors=True)  # a build that failed half way
            project = Project(base, server=server)
            try:
                code, _, stderr = project.deploy()
                assert code == 0, stderr
            finally:
                project.stop_servers()
            (base / "built").touch()
    return base / "deploy" / "staging" / "venvs"


@pytest.fixture(scope="session")
def sample_venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project's release virtualenvs (gunicorn), for ``Project(venvs=...)``."""
    return built_venvs(tmp_path_factory, "gunicorn")


@pytest.fixture(scope="session")
def uwsgi_venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with pyuwsgi (``Project(server="uwsgi")`` adds it to the requirements)."""
    return built_venvs(tmp_path_factory, "uwsgi")


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


@pytest.fixture
def fleet_factory(tmp_path: Path, sample_venvs: Path) -> Iterator[Any]:
    """``make(count, **options)``: a fleet of ``count`` SSH hosts; all stopped after."""
    from tests.fleet_hosts import Fleet
    from tests.sshd_support import SSHD

    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"{SSHD} is missing: run scripts/ensure-services.sh")
    made: list[Fleet] = []

    def make(count: int, **options: Any) -> Fleet:
        fleet = Fleet(tmp_path / f"fleet-{len(made) + 1}", count, sample_venvs, **options)
        made.append(fleet)
        return fleet

    try:
        yield make
    finally:
        for fleet in made:
            fleet.stop()
