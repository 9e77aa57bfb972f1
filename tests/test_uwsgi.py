"""The uWSGI server type, for real: started by the first deploy (the module fixture),
chain-reloaded through its master FIFO on the next, switched back by a rollback and by
a failed reload. Each test starts from whatever release serves, so any test runs alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline_support import Project, branch_with, current, get, git, history, set_title
from tests.servers_support import (
    master_pid,
    relaunch_with_parent_death_signal,
    rollback,
)

WSGI = "sampleproject/notesboard/wsgi.py"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, uwsgi_venvs: Path) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("uwsgi"), server="uwsgi", venvs=uwsgi_venvs)
    try:
        yield project
    finally:
        project.stop_servers()


@pytest.fixture(scope="module")
def first(project: Project) -> dict[str, Any]:
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    return data


def test_first_deploy_starts_uwsgi(project: Project, first: dict[str, Any]) -> None:
    reload = next(s for s in first["steps"] if s["name"] == "reload")
    assert reload["detail"].startswith("started uwsgi (pid ")
    status = json.loads(project.manage("server", "status", "--env=staging", "--json").stdout)
    assert status["running"] is True
    assert first["url"] == project.url("staging")
    assert get(project.url("staging"))[0] == 200


def test_code_change_is_chain_reloaded(project: Project, first: dict[str, Any]) -> None:
    pid = master_pid(project)
    set_title(project, "Notes board (uWSGI)")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    reload = next(s for s in data["steps"] if s["name"] == "reload")
    assert reload["detail"] == (
        f"chain reload to uwsgi (pid {pid}): new workers serve {data['release']}"
    )
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, data["release"])
    assert "Notes board (uWSGI)" in body
    assert master_pid(project) == pid


def test_rollback_chain_reloads_the_old_release(project: Project, first: dict[str, Any]) -> None:
    before = current(project)
    set_title(project, "Notes board (to roll back)")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    assert get(project.url("staging"))[:2] == (200, data["release"])
    code, back, stderr = rollback(project)
    assert code == 0, stderr
    assert back["release"] == before
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, before)
    assert "Notes board (to roll back)" not in body


def test_failed_reload_is_rolled_back(project: Project, first: dict[str, Any]) -> None:
    """The application imports in serve_check but not inside uWSGI: the reload fails."""
    serving = current(project)
    wsgi = (project.repo / WSGI).read_text()
    only_in_uwsgi = '\nimport sys\nif "uwsgi" in sys.modules:\n    raise ImportError("no app")\n'
    base = git(project.repo, "rev-parse", "HEAD").strip()
    branch_with(project, "bad-wsgi-in-uwsgi", base, {WSGI: wsgi + only_in_uwsgi})
    code, data, _ = project.deploy("staging", "--ref=bad-wsgi-in-uwsgi")
    assert code == 1
    assert data["status"] == "rolled_back"
    assert data["failed_step"] == "reload"
    assert data["error"].startswith("uwsgi ")
    assert current(project) == serving
    assert get(project.url("staging"))[:2] == (200, serving)
    assert history(project)[-1]["status"] == "rolled_back"
    assert not (project.root("staging") / ".lock").exists()


def test_the_daemon_outlives_a_launcher_that_dies_with_its_parent(
    project: Project, first: dict[str, Any]
) -> None:
    """``--daemonize`` forks too: a parent-death signal set on the launching process
    never reaches the uWSGI master."""
    serving = current(project)
    relaunch_with_parent_death_signal(project, "staging", serving)
    result = project.manage("server", "start", "--env=staging")
    assert result.returncode == 0, result.stderr
    assert get(project.url("staging"))[:2] == (200, serving)
