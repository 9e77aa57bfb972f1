"""Role processes deployed with each release (issue 14 §7), for real.

The sample project's ``manage.py heartbeat`` runs as the environment's
``worker``: it rewrites a file with its pid and the release it runs from, so
each test sees which release's code runs, and under which pid. Real deploys,
rollbacks, repairs and gunicorn, as in test_deploy.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import stop
from tests.pipeline_support import Project, commit_all, current, get, set_title
from tests.test_crash import processes_under, start_deploy, wait_for_step

HEARTBEAT = "sampleproject/notes/management/commands/heartbeat.py"


@dataclass
class Worker:
    """A project whose staging runs ``heartbeat`` as its worker, deployed once."""

    project: Project
    heartbeat: Path
    first: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.project.root("staging")

    def beat(self, release: str, timeout: float = 30.0) -> dict[str, Any]:
        """The heartbeat of ``release``'s worker, once it has written one and lives."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            if self.heartbeat.exists():
                seen = json.loads(self.heartbeat.read_text())
                if seen["release"] == release and alive(seen["pid"]):
                    return seen
            time.sleep(0.05)
        raise AssertionError(f"no heartbeat from {release}; last: {seen}")

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "shared" / "run" / "role-worker.json").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# 5 s: a manage.py that fails at once may take over a second to start Django on a
# loaded machine, and must die within the settle time to be caught.
def start_worker(tmp_path: Path, venvs: Path, settle: float = 5.0) -> Worker:
    heartbeat = tmp_path / "heartbeat.json"
    command = f"manage.py heartbeat --file {heartbeat} --interval 0.1"
    processes = {"worker": {"command": command, "settle": settle, "stop_timeout": 5}}
    project = Project(tmp_path, venvs=venvs, processes=processes)
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    return Worker(project, heartbeat, data)


@pytest.fixture
def worker(tmp_path: Path, sample_venvs: Path) -> Iterator[Worker]:
    made = None
    try:
        made = start_worker(tmp_path, sample_venvs)
        yield made
    finally:
        if made is not None:
            stop(made.project)


def step(data: dict[str, Any], name: str, key: str = "steps") -> dict[str, Any]:
    [found] = [s for s in data[key] if s["name"] == name]
    return found


def test_each_deploy_restarts_the_worker_with_its_release(worker: Worker) -> None:
    first = worker.first["release"]
    beat = worker.beat(first)
    assert beat["path"] == str(worker.root / "releases" / first)
    assert beat["pid"] == worker.state()["pid"]
    names = [s["name"] for s in worker.first["steps"]]
    assert names[names.index("reload") + 1] == "processes"
    started = step(worker.first, "processes")
    assert (started["status"], started["detail"]) == (
        "ok",
        f"worker: pid {beat['pid']} started from {first}",
    )

    set_title(worker.project, "Notes board v2")
    code, data, stderr = worker.project.deploy()
    assert code == 0, stderr
    second = data["release"]
    new = worker.beat(second)
    assert new["pid"] != beat["pid"] and not alive(beat["pid"])
    assert new["path"] == str(worker.root / "releases" / second)
    assert step(data, "processes")["detail"] == (
        f"worker: pid {beat['pid']} stopped, pid {new['pid']} started from {second}"
    )
    assert processes_under(worker.root / "releases" / first) == []

    status = worker.project.manage("status", "--env=staging", "--json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)["processes"]
    assert {k: row[k] for k in ("role", "configured", "pid", "release", "alive")} == {
        "role": "worker",
        "configured": True,
        "pid": new["pid"],
        "release": second,
        "alive": True,
    }
    text = worker.project.manage("status", "--env=staging").stdout.splitlines()
    assert (
        f"  process:     worker: running, pid {new['pid']}, release {second}, since {row['since']}"
    ) in text


def test_rollback_restarts_the_worker_with_the_release_it_goes_back_to(worker: Worker) -> None:
    first = worker.first["release"]
    set_title(worker.project, "Notes board v2")
    code, data, stderr = worker.project.deploy()
    assert code == 0, stderr
    newer = worker.beat(data["release"])

    result = worker.project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    back = json.loads(result.stdout)
    assert [s["name"] for s in back["steps"]] == [
        "plan", "database", "switch", "reload", "processes", "smoke",
    ]  # fmt: skip
    beat = worker.beat(first)
    assert beat["pid"] != newer["pid"] and not alive(newer["pid"])
    assert worker.state()["release"] == first
    assert get(worker.project.url("staging"))[:2] == (200, first)


def test_a_worker_that_does_not_come_back_undoes_the_deploy(worker: Worker) -> None:
    project, first = worker.project, worker.first["release"]
    old = worker.beat(first)
    secret = project.env_file_values("staging")["DJANGO_SECRET_KEY"]
    path = project.repo / HEARTBEAT
    text = path.read_text()
    path.write_text(
        text.replace(
            '        if options["ignore_term"]:',
            "        key = os.environ['DJANGO_SECRET_KEY']\n"
            '        raise SystemExit(f"cannot reach the queue as {key}")\n'
            '        if options["ignore_term"]:',
        )
    )
    commit_all(project.repo, "A worker that cannot start")

    code, data, stderr = project.deploy()
    assert code == 1
    assert (data["status"], data["failed_step"]) == ("rolled_back", "processes")
    assert data["error"].startswith(
        f"Role process 'worker' (manage.py heartbeat --file {worker.heartbeat} --interval 0.1) "
        "exited within 5 s of its start from release "
    )
    assert data["error_output"].splitlines()[-1] == "cannot reach the queue as ********"
    assert secret not in json.dumps(data) and secret not in stderr
    assert [s["name"] for s in data["rollback_steps"]] == [
        "switch",
        "reload",
        "processes",
        "check",
    ]
    assert {s["status"] for s in data["rollback_steps"]} == {"ok"}

    # The previous release serves and works again, its worker included.
    assert current(project) == first
    assert get(project.url("staging"))[:2] == (200, first)
    again = worker.beat(first)
    assert again["pid"] != old["pid"] and not alive(old["pid"])
    assert (worker.state()["release"], worker.state()["pid"]) == (first, again["pid"])
    status = project.manage("status", "--env=staging", "--json")
    assert status.returncode == 0, status.stderr


def test_a_deploy_killed_during_the_processes_step_is_repaired(
    tmp_path: Path, sample_venvs: Path
) -> None:
    # A long settle keeps the deploy in the step while the new worker already runs.
    made = start_worker(tmp_path, sample_venvs, settle=20)
    try:
        project, first = made.project, made.first["release"]
        set_title(project, "Notes board v2")
        process = start_deploy(project)
        try:
            journal = wait_for_step(project, "processes", process)
            newer = made.beat(journal["release"])
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        # In its own session: the deploy's death does not take the worker with it.
        assert alive(newer["pid"])

        status = project.manage("status", "--env=staging", "--json")
        assert status.returncode == 1
        report = json.loads(status.stdout)
        assert report["interrupted"]["step"] == "processes"
        assert report["interrupted"]["needs_repair"] is True
        assert [(r["release"], r["alive"]) for r in report["processes"]] == [
            (journal["release"], True)
        ]

        repaired = project.manage("repair", "--env=staging", "--json")
        assert repaired.returncode == 0, repaired.stderr
        outcome = json.loads(repaired.stdout)
        assert [s["name"] for s in outcome["steps"]] == [
            "database", "switch", "reload", "processes", "smoke", "verify",
        ]  # fmt: skip
        beat = made.beat(first)
        assert not alive(newer["pid"]) and beat["pid"] != newer["pid"]
        assert processes_under(made.root / "releases" / journal["release"]) == []
        assert get(project.url("staging"))[:2] == (200, first)
        clean = project.manage("status", "--env=staging", "--json")
        assert clean.returncode == 0, clean.stderr
    finally:
        stop(made.project)
