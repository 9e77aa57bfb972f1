"""Flag states travel with releases: a real deploy of the sample project.

The deploy runs ``flags reconcile`` and ``flags export --json`` in the new
release and stores the snapshot in ``release.json`` under ``"flags"``;
``rollback --restore-flags`` shows the diff and imports the target release's
snapshot. Real git, real manage.py processes, a real virtualenv, SQLite and
gunicorn on a free loopback port.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline_support import Project, commit_all, current, get


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_venvs: Path) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("flags"), venvs=sample_venvs)
    try:
        code, _, stderr = project.deploy()
        assert code == 0, stderr
        yield project
    finally:
        project.stop_servers()


def in_release(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py flags ...`` in the current release, as an operator on the host runs it."""
    root = project.root("staging")
    release = root / "current"
    environ = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "settings.staging",
        "DJANGO_ENV_FILE": str(root / "shared" / ".env"),
    }
    python = release / ".venv" / "bin" / "python"
    return subprocess.run(
        [str(python), str(release / "sampleproject" / "manage.py"), "flags", *args],
        cwd=release, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def flag_state(project: Project, name: str) -> str:
    result = in_release(project, "show", name, "--json")
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["state"])


def manifest(project: Project, release: str) -> dict[str, Any]:
    path = project.root("staging") / "releases" / release / "release.json"
    return dict(json.loads(path.read_text()))


def board_link_shown(project: Project) -> bool:
    status, _, body = get(project.url("staging"))
    assert status == 200, body[:500]
    return 'id="board-stats"' in body


def test_a_flag_switched_by_command_reaches_the_running_site(project: Project):
    assert in_release(project, "off", "board_stats").returncode == 0
    assert not board_link_shown(project)
    result = in_release(project, "on", "board_stats", "--reason", "try it")
    assert result.stdout == "board_stats is now on.\n", result.stderr
    assert board_link_shown(project)  # another process (gunicorn) sees it: the shared cache
    history = json.loads(in_release(project, "history", "board_stats", "--json").stdout)
    assert history[0]["reason"] == "try it"
    assert history[0]["release"] == current(project)


def test_deploy_records_every_flag_state_in_release_json(project: Project):
    assert in_release(project, "on", "board_stats").returncode == 0
    views = project.repo / "sampleproject" / "notes" / "views.py"
    views.write_text(views.read_text() + "\n# flags: release snapshot\n")
    commit_all(project.repo, "A release that records flags")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    flags = manifest(project, data["release"])["flags"]
    assert flags["format"] == 1
    [board] = [f for f in flags["flags"] if f["name"] == "board_stats"]
    assert (board["type"], board["state"]) == ("flag", "on")


def test_rollback_restore_flags_shows_the_diff_and_puts_the_target_states_back(
    project: Project,
):
    assert in_release(project, "off", "board_stats").returncode == 0
    views = project.repo / "sampleproject" / "notes" / "views.py"
    views.write_text(views.read_text() + "\n# flags: off in this release\n")
    commit_all(project.repo, "Release with the flag off")
    code, first, stderr = project.deploy()
    assert code == 0, stderr
    assert in_release(project, "on", "board_stats").returncode == 0
    views.write_text(views.read_text() + "\n# flags: on in this release\n")
    commit_all(project.repo, "Release with the flag on")
    code, _, stderr = project.deploy()
    assert code == 0, stderr
    assert board_link_shown(project)

    result = project.manage(
        "rollback", "--env=staging", f"--to={first['release']}", "--restore-flags"
    )
    assert result.returncode == 0, result.stderr
    assert "board_stats: on -> off" in result.stdout
    assert current(project) == first["release"]
    assert flag_state(project, "board_stats") == "off"
    assert not board_link_shown(project)
    history = json.loads(in_release(project, "history", "board_stats", "--json").stdout)
    assert history[0]["source"] == "rollback"
    assert (history[0]["old_state"], history[0]["new_state"]) == ("on", "off")
