"""A gunicorn handover cut short by a command killed outright (issue 14's "killed
mid-switch", on one host): the next command finds the master that really serves.

Each test leaves the state a kill at one moment of ``GunicornServer._handover``
leaves, made with the real signals on the real gunicorn, then runs a rollback.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import Deployed
from tests.pipeline_support import Project, current, get, set_title


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def state(project: Project) -> dict[str, object]:
    return dict(json.loads((project.root("staging") / "shared/run/gunicorn.json").read_text()))


def wait_for_pid(path: Path, exclude: int) -> int:
    """The live pid other than ``exclude`` that gunicorn writes to ``path``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text.isdigit() and int(text) != exclude and alive(int(text)):
            return int(text)
        time.sleep(0.1)
    raise AssertionError(f"no new master wrote {path}")


def two_releases(staging: Deployed) -> tuple[str, str, int, Path]:
    """Deploy a second release: (first, second, its master's pid, its pid file)."""
    project = staging.project
    set_title(project, "Second")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    running = state(project)
    return (
        staging.release,
        data["release"],
        int(str(running["pid"])),
        Path(str(running["pidfile"])),
    )


def rolled_back(project: Project, first: str) -> dict[str, object]:
    result = project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert current(project) == first
    assert get(project.url("staging"))[:2] == (200, first)
    return state(project)


def test_a_new_master_left_mid_handover_is_retired_before_the_next(staging: Deployed) -> None:
    # Killed after USR2, before the old master was retired: two masters on one socket.
    first, _, old, pidfile = two_releases(staging)
    os.kill(old, signal.SIGUSR2)
    orphan = wait_for_pid(Path(f"{pidfile}.2"), exclude=old)
    after = rolled_back(staging.project, first)
    serving = int(str(after["pid"]))
    assert serving not in (old, orphan)
    assert alive(serving) and not alive(old) and not alive(orphan)


def test_the_master_that_took_over_is_adopted_not_started_beside(staging: Deployed) -> None:
    # Killed after the old master was retired, before the state named the new one.
    first, _, old, pidfile = two_releases(staging)
    os.kill(old, signal.SIGUSR2)
    heir = wait_for_pid(Path(f"{pidfile}.2"), exclude=old)
    os.kill(old, signal.SIGTERM)
    assert wait_for_pid(pidfile, exclude=old) == heir
    assert state(staging.project)["pid"] == old  # the state names a dead master
    status = staging.project.manage("server", "status", "--env=staging", "--json")
    assert json.loads(status.stdout)["pid"] == heir
    after = rolled_back(staging.project, first)
    serving = int(str(after["pid"]))
    assert serving != heir and alive(serving) and not alive(heir)
