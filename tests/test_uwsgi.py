"""The uWSGI server type, for real: started by the first deploy, chain-reloaded
through its master FIFO on the next, switched back by a rollback and by a
failed reload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline_support import Project, branch_with, commit_all, current, get, git, history

VIEWS = "sampleproject/notes/views.py"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("uwsgi"), server="uwsgi")
    try:
        yield project
    finally:
        project.stop_servers()


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def test_first_deploy_starts_uwsgi(project: Project, state: dict[str, Any]) -> None:
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    reload = next(s for s in data["steps"] if s["name"] == "reload")
    assert reload["detail"].startswith("started uwsgi (pid ")
    assert get(project.url("staging"))[:2] == (200, data["release"])
    status = json.loads(project.manage("server", "status", "--env=staging", "--json").stdout)
    assert status["running"] is True
    state["v1"], state["pid"] = data["release"], status["pid"]


def test_code_change_is_chain_reloaded(project: Project, state: dict[str, Any]) -> None:
    views = project.repo / VIEWS
    views.write_text(views.read_text().replace('"Notes board"', '"Notes board (uWSGI)"'))
    commit_all(project.repo, "uWSGI title")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    reload = next(s for s in data["steps"] if s["name"] == "reload")
    assert reload["detail"] == (
        f"chain reload to uwsgi (pid {state['pid']}): new workers serve {data['release']}"
    )
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, data["release"])
    assert "Notes board (uWSGI)" in body
    state["v2"] = data["release"]


def test_rollback_chain_reloads_the_old_release(project: Project, state: dict[str, Any]) -> None:
    result = project.manage("rollback", "--env=staging")
    assert result.returncode == 0, result.stderr
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, state["v1"])
    assert "Notes board (uWSGI)" not in body


def test_failed_reload_is_rolled_back(project: Project, state: dict[str, Any]) -> None:
    wsgi = project.repo / "sampleproject" / "notesboard" / "wsgi.py"
    base = git(project.repo, "rev-parse", "HEAD").strip()
    branch_with(
        project,
        "bad-wsgi",
        base,
        {"sampleproject/notesboard/wsgi.py": wsgi.read_text() + '\nraise ImportError("no app")\n'},
    )
    code, data, _ = project.deploy("staging", "--ref=bad-wsgi")
    assert code == 1
    assert data["status"] == "rolled_back"
    assert data["failed_step"] == "reload"
    assert data["error"].startswith("uwsgi ")
    assert current(project) == state["v1"]
    assert get(project.url("staging"))[:2] == (200, state["v1"])
    assert history(project)[-1]["status"] == "rolled_back"
    assert not (project.root("staging") / ".lock").exists()
