"""Role processes (issue 14 §7), without a deploy: real processes started from
release directories made by hand, stopped, reloaded and watched through the
local ``Host``. The deploys that run them are in test_deploy_processes.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.processes import RoleProcesses, describe_process, restart_step
from django_cd.pipeline.release import Release
from django_cd.pipeline.steps import StepResult, StepRunner
from django_cd.pipeline.target import Target

SECRET = "s3cret-value-that-must-never-be-printed"
# On PATH only through the release's virtualenv: proves where other commands come from.
ROLETOOL = """#!/bin/sh
echo "role=$DJANGO_CD_ROLE settings=$DJANGO_SETTINGS_MODULE colour=$COLOUR pwd=$(pwd)"
trap 'echo reloaded' HUP
if [ -n "$IGNORE_TERM" ]; then trap '' TERM; fi
while :; do sleep 0.05; done
"""
MANAGE_PY = """import os, sys, time
print("manage.py", " ".join(sys.argv[1:]), os.environ["DJANGO_SETTINGS_MODULE"], flush=True)
time.sleep(600)
"""


class Roles:
    """A deploy root with two hand-made releases and ``processes`` as configured."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        venv = base / "venv"
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(sys.executable)
        tool = venv / "bin" / "roletool"
        tool.write_text(ROLETOOL)
        tool.chmod(0o755)
        for release_id in ("r1", "r2"):
            path = self.root / "releases" / release_id
            path.mkdir(parents=True)
            (path / ".venv").symlink_to(venv)
            (path / "manage.py").write_text(MANAGE_PY)
        shared = self.root / "shared"
        shared.mkdir()
        (shared / ".env").write_text(f"COLOUR=blue\nDJANGO_SECRET_KEY={SECRET}\n")
        self.seen: set[int] = set()

    def target(self, processes: dict[str, Any]) -> Target:
        config = {
            "ENVIRONMENTS": {
                "staging": {
                    "settings": "settings.staging",
                    "root": str(self.root),
                    "processes": processes,
                }
            }
        }
        with override_settings(DJANGO_CD=config):
            return Target(conf.get_environment("staging"))

    def restart(self, processes: dict[str, Any], release_id: str | None) -> str:
        target = self.target(processes)
        release = target.release(release_id) if release_id else None
        roles = RoleProcesses(target)
        try:
            return roles.restart(release)
        finally:
            self.seen.update(int(row["pid"]) for row in roles.status() if row["pid"])

    def state(self, role: str) -> dict[str, Any]:
        return json.loads((self.root / "shared" / "run" / f"role-{role}.json").read_text())

    def log(self, role: str) -> str:
        return (self.root / "shared" / "log" / f"role-{role}.log").read_text()

    def release(self, release_id: str) -> Release:
        return self.target({}).release(release_id)


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[Roles]:
    made = Roles(tmp_path)
    try:
        yield made
    finally:
        for pid in made.seen:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as status:
        return status.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


WORKER = {"command": "roletool", "settle": 0.3}
MANAGE = {"command": "manage.py rqworker default --verbose", "settle": 0.3}


def test_started_detached_from_the_release_with_its_environment(roles: Roles) -> None:
    detail = roles.restart({"worker": WORKER, "alerts": MANAGE}, "r1")
    worker, alerts = roles.state("worker"), roles.state("alerts")
    assert detail == (
        f"worker: pid {worker['pid']} started from r1; alerts: pid {alerts['pid']} started from r1"
    )
    release = roles.release("r1")
    assert (worker["release"], worker["command"], worker["argv"]) == (
        "r1",
        "roletool",
        ["roletool"],
    )
    assert alerts["argv"] == [
        release.python, release.manage_py, "rqworker", "default", "--verbose",
    ]  # fmt: skip
    for pid in (worker["pid"], alerts["pid"]):
        assert alive(pid)
        assert os.getsid(pid) == pid  # its own session: the deploy's end does not reach it
    wait_for(lambda: "pwd=" in roles.log("worker") and "rqworker" in roles.log("alerts"))
    path = roles.root / "releases" / "r1"
    assert f"role=worker settings=settings.staging colour=blue pwd={path}\n" in roles.log("worker")
    assert "manage.py rqworker default --verbose settings.staging\n" in roles.log("alerts")
    assert roles.log("worker").startswith("--- django-cd ")
    log = roles.root / "shared" / "log" / "role-worker.log"
    state = roles.root / "shared" / "run" / "role-worker.json"
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_a_new_release_gets_a_new_process(roles: Roles) -> None:
    roles.restart({"worker": WORKER}, "r1")
    old = roles.state("worker")["pid"]
    detail = roles.restart({"worker": WORKER}, "r2")
    new = roles.state("worker")
    assert new["pid"] != old and new["release"] == "r2"
    assert detail == f"worker: pid {old} stopped, pid {new['pid']} started from r2"
    assert not alive(old) and alive(new["pid"])
    wait_for(lambda: "releases/r2\n" in roles.log("worker"))


def test_the_same_release_is_kept_or_sent_its_reload_signal(roles: Roles) -> None:
    roles.restart({"worker": WORKER}, "r1")
    pid = roles.state("worker")["pid"]
    assert roles.restart({"worker": WORKER}, "r1") == f"worker (pid {pid}) runs r1 already"
    reloading = {"worker": {**WORKER, "reload_signal": "HUP"}}
    assert roles.restart(reloading, "r1") == f"worker (pid {pid}) reloaded with SIGHUP"
    assert roles.state("worker")["pid"] == pid and alive(pid)
    wait_for(lambda: "reloaded\n" in roles.log("worker"))
    # Another command line is not the same process: restarted, not reloaded.
    roles.restart({"worker": {**WORKER, "command": "roletool --other"}}, "r1")
    assert roles.state("worker")["pid"] != pid and not alive(pid)


def test_a_process_that_ignores_its_stop_signal_is_killed_after_stop_timeout(
    roles: Roles,
) -> None:
    stubborn = {
        "worker": {"command": "env IGNORE_TERM=1 roletool", "stop_timeout": 0.8, "settle": 0.1}
    }
    roles.restart(stubborn, "r1")
    old = roles.state("worker")["pid"]
    wait_for(lambda: "pwd=" in roles.log("worker"))
    os.kill(old, signal.SIGTERM)  # ignored: the trap is set
    time.sleep(0.2)
    assert alive(old)
    started = time.monotonic()
    roles.restart(stubborn, "r2")
    took = time.monotonic() - started
    assert not alive(old)
    assert 0.8 <= took < 5, took


def test_a_process_that_exits_fails_the_step_with_its_log(roles: Roles) -> None:
    roles.restart({"worker": WORKER}, "r1")
    dying = {
        "worker": {
            "command": "sh -c 'echo cannot reach the queue with $DJANGO_SECRET_KEY >&2; exit 3'",
            "settle": 5,
        }
    }
    started = time.monotonic()
    with pytest.raises(StepFailed) as failed:
        roles.restart(dying, "r2")
    assert time.monotonic() - started < 4  # failed when it exited, not after the settle time
    assert failed.value.step == "processes"
    assert str(failed.value) == (
        "Role process 'worker' (sh -c 'echo cannot reach the queue with $DJANGO_SECRET_KEY "
        ">&2; exit 3') exited within 5 s of its start from release r2; see "
        f"{roles.root}/shared/log/role-worker.log."
    )
    output = failed.value.output.splitlines()
    assert output[0].startswith("--- django-cd ") and "from release r2" in output[0]
    assert output[1:] == ["cannot reach the queue with ********"]
    assert SECRET in roles.log("worker")  # the log itself is the project's, private
    # Back to the release that worked: started again (the dead one is not "the same").
    roles.restart({"worker": WORKER}, "r1")
    assert alive(roles.state("worker")["pid"])


def test_a_command_that_cannot_start_says_why(roles: Roles) -> None:
    with pytest.raises(StepFailed) as failed:
        roles.restart({"worker": {"command": "no-such-program --flag"}}, "r1")
    message = str(failed.value)
    assert message.startswith(
        "Role process 'worker' (no-such-program --flag) could not be started from release r1: "
        "FileNotFoundError: "
    )
    assert message.endswith("Fix the command in the environment's 'processes'.")


def test_removed_roles_are_stopped_and_none_stops_all(roles: Roles) -> None:
    roles.restart({"worker": WORKER, "alerts": MANAGE}, "r1")
    worker, alerts = roles.state("worker")["pid"], roles.state("alerts")["pid"]
    detail = roles.restart({"worker": WORKER}, "r2")
    assert detail.startswith(f"alerts (pid {alerts}) stopped; worker: pid {worker} stopped, ")
    assert not alive(alerts)
    assert not (roles.root / "shared" / "run" / "role-alerts.json").exists()
    new = roles.state("worker")["pid"]
    assert roles.restart({"worker": WORKER}, None) == f"worker (pid {new}) stopped"
    assert not alive(new)
    assert list((roles.root / "shared" / "run").iterdir()) == []


def test_status_rows(roles: Roles) -> None:
    roles.restart({"worker": WORKER, "alerts": MANAGE}, "r1")
    worker, alerts = roles.state("worker"), roles.state("alerts")
    os.kill(alerts["pid"], signal.SIGKILL)
    wait_for(lambda: not alive(alerts["pid"]))
    rows = RoleProcesses(roles.target({"worker": WORKER, "cron": WORKER})).status()
    assert [(r["role"], r["configured"], r["pid"], r["release"], r["alive"]) for r in rows] == [
        ("alerts", False, alerts["pid"], "r1", False),
        ("cron", True, None, None, False),
        ("worker", True, worker["pid"], "r1", True),
    ]
    assert [describe_process(r) for r in rows] == [
        f"alerts: NOT RUNNING, pid {alerts['pid']}, release r1, since {alerts['since']} "
        "(no longer configured)",
        "cron: not started",
        f"worker: running, pid {worker['pid']}, release r1, since {worker['since']}",
    ]


def test_the_step_is_skipped_or_left_out_without_role_processes(roles: Roles) -> None:
    results: list[StepResult] = []
    runner = StepRunner(results, None, [])
    target = roles.target({})
    restart_step(runner, target, target.release("r1"), quiet=True)
    assert results == []
    restart_step(runner, target, target.release("r1"))
    assert [(r.name, r.status, r.detail) for r in results] == [
        ("processes", "skipped", "the environment has no role processes")
    ]


# Settings ---------------------------------------------------------------------


def problems_of(processes: Any) -> list[tuple[str, str]]:
    config = {"ENVIRONMENTS": {"live": {"settings": "s.live", "root": "/srv/live"}}}
    config["ENVIRONMENTS"]["live"]["processes"] = processes
    with override_settings(DJANGO_CD=config):
        return [(p.id, p.msg) for p in conf.validate()]


def test_processes_are_built_with_defaults() -> None:
    config = {
        "ENVIRONMENTS": {
            "live": {
                "settings": "s.live",
                "root": "/srv/live",
                "processes": {
                    "worker": "manage.py rqworker default",
                    "alerts": {
                        "command": "manage.py sendalerts",
                        "stop_signal": "SIGINT",
                        "reload_signal": "hup",
                        "stop_timeout": 3,
                    },
                },
            }
        }
    }
    with override_settings(DJANGO_CD=config):
        assert conf.validate() == []
        assert conf.get_environment("live").processes == (
            conf.Process("worker", ("manage.py", "rqworker", "default"), "TERM", 10.0, None, 3.0),
            conf.Process("alerts", ("manage.py", "sendalerts"), "INT", 3.0, "HUP", 3.0),
        )


@pytest.mark.parametrize(
    ("processes", "expected"),
    [
        (
            ["manage.py rqworker"],
            ("django_cd.E170", "Environment 'live': 'processes' must be a dict of role name -> "
             "command, not list."),
        ),
        (
            {"Worker 1": "manage.py rqworker"},
            ("django_cd.E171", "Environment 'live': process 'Worker 1': the role name is not "
             "valid."),
        ),
        (
            {"worker": 3},
            ("django_cd.E172", "Environment 'live': process 'worker' must be a command string "
             "or a dict."),
        ),
        (
            {"worker": {"command": "x", "restart": "always"}},
            ("django_cd.E172", "Environment 'live': process 'worker' has unknown key(s) "
             "'restart'."),
        ),
        (
            {"worker": {"stop_signal": "TERM"}},
            ("django_cd.E172", "Environment 'live': process 'worker' has a 'command' that is "
             "not a command line: None."),
        ),
        (
            {"worker": "manage.py rqworker 'default"},
            ("django_cd.E172", "Environment 'live': process 'worker' has a 'command' that is "
             "not a command line: \"manage.py rqworker 'default\"."),
        ),
        (
            {"worker": {"command": "x", "stop_signal": "STOP_NOW"}},
            ("django_cd.E173", "Environment 'live': process 'worker' has 'stop_signal' "
             "'STOP_NOW', which is not a signal name."),
        ),
        (
            {"worker": {"command": "x", "reload_signal": 1}},
            ("django_cd.E173", "Environment 'live': process 'worker' has 'reload_signal' 1, "
             "which is not a signal name."),
        ),
        (
            {"worker": {"command": "x", "stop_timeout": 0}},
            ("django_cd.E174", "Environment 'live': process 'worker' has 'stop_timeout' 0: it "
             "must be a positive number of seconds."),
        ),
        (
            {"worker": {"command": "x", "settle": True}},
            ("django_cd.E174", "Environment 'live': process 'worker' has 'settle' True: it "
             "must be a positive number of seconds."),
        ),
    ],
)  # fmt: skip
def test_bad_processes(processes: Any, expected: tuple[str, str]) -> None:
    assert problems_of(processes) == [expected]


def test_a_bad_process_fails_the_system_checks() -> None:
    config = {
        "ENVIRONMENTS": {
            "live": {"settings": "s.live", "root": "/srv/live", "processes": {"w": {}}}
        }
    }
    with override_settings(DJANGO_CD=config), pytest.raises(SystemCheckError, match="E172"):
        call_command("check")


def test_a_project_step_cannot_take_the_name_processes() -> None:
    config = {
        "ENVIRONMENTS": {
            "live": {
                "settings": "s.live",
                "root": "/srv/live",
                "steps": [{"name": "processes", "after": "migrate", "run": "true"}],
            }
        }
    }
    with override_settings(DJANGO_CD=config):
        assert [p.id for p in conf.validate()] == ["django_cd.E063"]
