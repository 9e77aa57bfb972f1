"""Zero dropped requests, under real load, for gunicorn and uWSGI.

One scratch project per server type (the module fixture deploys it once);
each test deploys on top of whatever release serves, so any test runs alone
and in any order. The load is real HTTP from threads: clients that open a
connection per request and clients that keep one alive (see
``tests/servers_support.py`` for what counts as failed).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.pipeline_support import Project, current, get, set_title
from tests.servers_support import (
    Load,
    children,
    failures,
    latency_summary,
    master_pid,
    rollback,
)

#: Consecutive deploys, and rollbacks, each of which must drop nothing: 16 switches
#: under load per server type here; benchmarks/reload.py repeats more, with latencies.
RUNS = 8
CLIENTS = 4  # of each kind: 4 with a new connection per request, 4 keep-alive


@pytest.fixture(scope="module", params=["gunicorn", "uwsgi"])
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    venvs = request.getfixturevalue(f"{'uwsgi' if request.param == 'uwsgi' else 'sample'}_venvs")
    project = Project(tmp_path_factory.mktemp(request.param), server=request.param, venvs=venvs)
    try:
        code, _, stderr = project.deploy()
        assert code == 0, stderr
        yield project
    finally:
        project.stop_servers()


def reload_detail(project: Project, release: str) -> str:
    return (
        "chain reload to uwsgi (pid " if project.server == "uwsgi" else "new gunicorn master (pid "
    )


def test_deploys_and_rollbacks_drop_no_request_under_load(project: Project) -> None:
    url = project.url("staging")
    report: list[str] = []
    with Load(url, clients=CLIENTS) as load:
        time.sleep(0.5)
        for run in range(RUNS):
            before = current(project)
            set_title(project, f"Notes board, load run {run}")
            mark = load.mark()
            code, data, stderr = project.deploy()
            assert code == 0, stderr
            reload = next(s for s in data["steps"] if s["name"] == "reload")
            assert reload["detail"].startswith(reload_detail(project, data["release"]))
            time.sleep(0.2)
            deploy_phase = load.results[mark : load.mark()]

            mark = load.mark()
            code, back, stderr = rollback(project)
            assert code == 0, stderr
            assert back["release"] == before
            time.sleep(0.2)
            rollback_phase = load.results[mark : load.mark()]

            for name, phase, releases in (
                ("deploy", deploy_phase, {before, data["release"]}),
                ("rollback", rollback_phase, {before, data["release"]}),
            ):
                report.append(
                    f"{project.server} run {run} {name}: {len(phase)} requests, "
                    f"{len(failures(phase))} failed, {latency_summary(phase)}"
                )
                assert len(phase) > 20, report[-1]
                assert failures(phase) == [], (report[-1], failures(phase)[:5])
                assert {r.release for r in phase} <= releases, report[-1]
                assert any(r.keep_alive for r in phase) and any(not r.keep_alive for r in phase)
            # Each phase ends with the release it switched to answering every client.
            assert deploy_phase[-1].release == data["release"]
            assert rollback_phase[-1].release == before
    print("\n".join(report), f"\nkeep-alive retries on an idle-closed connection: {load.retried}")
    # The servers say "Connection: close" when they close: a kept-alive connection is
    # never found closed, so even a client that never retries loses nothing.
    assert load.retried == 0


def test_a_pruned_first_release_pins_nothing(project: Project) -> None:
    """More deploys than KEEP_RELEASES (3) prune the release the master started from;
    a reload and a worker killed and re-spawned afterwards still serve."""
    pid = master_pid(project)
    started_from = current(project)
    for run in range(4):
        set_title(project, f"Notes board, prune run {run}")
        code, data, stderr = project.deploy()
        assert code == 0, stderr
    assert started_from is not None
    assert not (project.root("staging") / "releases" / started_from).exists()
    pid = master_pid(project)
    releases = str(project.root("staging") / "releases")
    assert not os.readlink(f"/proc/{pid}/cwd").startswith(releases)
    assert get(project.url("staging"))[:2] == (200, data["release"])

    # A reload (chain reload / USR2 handover) with the original release gone.
    result = project.manage("server", "reload", "--env=staging")
    assert result.returncode == 0, result.stderr
    pid = master_pid(project)
    assert get(project.url("staging"))[:2] == (200, data["release"])

    # A worker that dies is re-spawned by the master, and the site still serves.
    [worker, *_] = children(pid)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker in children(pid):
        time.sleep(0.1)
    while time.monotonic() < deadline and not children(pid):
        time.sleep(0.1)
    answers = [get(project.url("staging"))[:2] for _ in range(5)]
    assert answers == [(200, data["release"])] * 5
    assert master_pid(project) == pid
