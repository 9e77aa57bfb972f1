"""Deploys to a fleet of real SSH hosts (issue 14): each host a Debian sshd on a
loopback port with its own deploy root and gunicorn, one shared database.

Every assertion about serving is made over HTTP against each host's own gunicorn.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

from tests.fleet_hosts import Fleet
from tests.pipeline_support import set_title


def deployed(fleet: Fleet, *args: str) -> dict[str, Any]:
    code, data, stderr = fleet.deploy(*args)
    assert code == 0, stderr
    assert data["status"] == "success"
    return data


def test_four_hosts_deploy_in_parallel_then_roll_back_as_one(
    fleet_factory: Any, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.log"  # every host is this machine: one file sees them all
    steps = [
        {"name": "once", "after": "migrate", "hosts": "migration",
         "run": ["sh", "-c", f"echo once $PWD >> {ran}"]},
        {"name": "everywhere", "after": "collectstatic",
         "run": ["sh", "-c", f"echo each $PWD >> {ran}"]},
    ]  # fmt: skip
    fleet: Fleet = fleet_factory(4, steps=steps)
    first = deployed(fleet)["release"]
    lines = ran.read_text().splitlines()
    assert sorted(lines) == sorted(
        [f"once {fleet.hosts[0].root}/releases/{first}"]
        + [f"each {h.root}/releases/{first}" for h in fleet.hosts]
    )
    assert fleet.answers() == [(200, first)] * 4
    set_title(fleet.project, "Second")
    data = deployed(fleet)
    second = data["release"]
    assert second != first
    assert fleet.answers() == [(200, second)] * 4
    assert data["hosts"] == [host.address for host in fleet.hosts]
    # One migration host: the plan and migrate ran once, the rest on every host.
    per_step: dict[str, set[str]] = {}
    for step in data["steps"]:
        per_step.setdefault(step["name"], set()).add(step.get("host", ""))
    assert per_step["plan"] == per_step["migrate"] == {fleet.hosts[0].address}
    once = {s.get("host"): s["status"] for s in data["steps"] if s["name"] == "once"}
    assert once == {
        fleet.hosts[0].address: "ok",
        **{h.address: "skipped" for h in fleet.hosts[1:]},
    }
    assert per_step["switch"] == per_step["smoke"] == {h.address for h in fleet.hosts}
    # History on every host; the migration host also keeps what the others do not need.
    assert [h.history()[-1]["release"] for h in fleet.hosts] == [second] * 4

    status = fleet.manage("status", "--env=staging", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["fleet"] == {"releases": {second: [h.address for h in fleet.hosts]},
                               "consistent": True}  # fmt: skip

    back = fleet.manage("rollback", "--env=staging", "--json")
    assert back.returncode == 0, back.stderr
    rolled = json.loads(back.stdout)
    assert rolled["release"] == first
    hosts_of = {s["name"]: set() for s in rolled["steps"]}
    for step in rolled["steps"]:
        hosts_of[step["name"]].add(step["host"])
    # The plan (and the database step, skipped: same schema) on the migration host.
    assert hosts_of["plan"] == hosts_of["database"] == {fleet.hosts[0].address}
    assert hosts_of["switch"] == hosts_of["smoke"] == {h.address for h in fleet.hosts}
    assert fleet.answers() == [(200, first)] * 4
    assert fleet.currents() == [first] * 4


def test_rolling_stops_at_the_host_that_fails_and_switches_the_fleet_back(
    fleet_factory: Any,
) -> None:
    fleet: Fleet = fleet_factory(4, strategy="rolling", rollout={"batch": 1})
    first = deployed(fleet)["release"]
    set_title(fleet.project, "Broken on host 3")
    # Host 3's new release answers 400 to every request: its smoke check fails.
    fleet.write_env(fleet.hosts[2], DJANGO_ALLOWED_HOSTS="nowhere.example")
    code, data, stderr = fleet.deploy()
    assert code == 1, stderr
    assert (data["status"], data["failed_step"]) == ("rolled_back", "smoke")
    assert fleet.hosts[2].address in data["error"] or any(
        s["status"] == "failed" and s.get("host") == fleet.hosts[2].address for s in data["steps"]
    )
    switched = [s.get("host") for s in data["steps"] if s["name"] == "switch"]
    assert switched == [h.address for h in fleet.hosts[:3]]  # host 4 was never switched
    undone = {s.get("host") for s in data["rollback_steps"] if s["name"] == "switch"}
    assert undone == {h.address for h in fleet.hosts[:3]}
    # The whole fleet serves the release it served before, over HTTP.
    assert fleet.currents() == [first] * 4
    assert fleet.answers() == [(200, first)] * 4
    assert [h.releases() for h in fleet.hosts] == [[first]] * 4


def test_canary_hosts_bake_before_the_rest_switch(fleet_factory: Any) -> None:
    fleet: Fleet = fleet_factory(3, strategy="canary", rollout={"canary": 1, "bake": 1})
    first = deployed(fleet)["release"]
    set_title(fleet.project, "Canary")
    data = deployed(fleet)
    names = [(s["name"], s.get("host", "")) for s in data["steps"]]
    bake = names.index(("bake", ""))
    canary, *rest = (h.address for h in fleet.hosts)
    assert names.index(("smoke", canary)) < bake
    assert all(names.index(("switch", host)) > bake for host in rest)
    bake_step = data["steps"][bake]
    assert bake_step["status"] == "ok" and "1 canary host(s) passed" in bake_step["detail"]
    assert bake_step["seconds"] >= 1.0
    assert fleet.answers() == [(200, data["release"])] * 3
    assert data["release"] != first


def test_an_unreachable_host_stops_the_deploy_before_anything_changes(
    fleet_factory: Any,
) -> None:
    fleet: Fleet = fleet_factory(3)
    first = deployed(fleet)["release"]
    set_title(fleet.project, "Without host 3")
    fleet.hosts[2].server.stop()
    code, _, stderr = fleet.deploy()
    assert code == 1
    assert "1 host(s) of 'staging' cannot be reached; nothing was changed." in stderr
    assert f"Cannot connect to {fleet.hosts[2].address}: connection refused." in stderr
    assert "--skip-unreachable" in stderr
    assert fleet.currents()[:2] == [first, first]
    assert [h.releases() for h in fleet.hosts[:2]] == [[first], [first]]

    data = deployed(fleet, "--skip-unreachable")
    assert data["skipped_hosts"] == [fleet.hosts[2].address]
    assert any("Skipped " + fleet.hosts[2].address in w for w in data["warnings"])
    assert [h.get() for h in fleet.hosts[:2]] == [(200, data["release"])] * 2
    assert fleet.hosts[2].current() == first  # left as it was, and recorded
    assert fleet.hosts[0].history()[-1]["skipped_hosts"] == [fleet.hosts[2].address]

    status = fleet.manage("status", "--env=staging", "--json")
    assert status.returncode == 1  # the operator must act: a host is unreachable
    report = json.loads(status.stdout)
    assert report["fleet"]["consistent"] is False
    assert any("cannot be reached" in problem for problem in report["problems"])


def test_the_migration_host_cannot_be_skipped(fleet_factory: Any) -> None:
    fleet: Fleet = fleet_factory(2)
    fleet.hosts[0].server.stop()
    code, _, stderr = fleet.deploy("--skip-unreachable")
    assert code == 2  # the gates cannot be asked at all
    assert (
        f"{fleet.hosts[0].address} is the migration host of 'staging': it cannot be skipped"
        in stderr
    )
    assert fleet.hosts[1].releases() == []


def test_a_deploy_killed_mid_switch_is_repaired_to_one_release(fleet_factory: Any) -> None:
    fleet: Fleet = fleet_factory(3)
    first = deployed(fleet)["release"]
    fleet.settings["LOCK_EXPIRY"] = 2
    fleet.configure(strategy="canary", rollout={"canary": 1, "bake": 120})
    set_title(fleet.project, "Killed during the bake")
    process = fleet.start_deploy()
    canary = fleet.hosts[0]
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []],
                     daemon=True).start()  # fmt: skip
    seen = []
    try:  # killed once the canary passed its smoke check: during the bake
        deadline = time.monotonic() + 240
        while not any(canary.address in line and " smoke " in line for line in seen):
            assert time.monotonic() < deadline, "the canary never passed: " + "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
            assert process.poll() is None or not lines.empty(), "".join(seen)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    killed = canary.current()
    assert killed != first
    assert fleet.currents() == [killed, first, first]
    assert fleet.answers() == [(200, killed), (200, first), (200, first)]

    status = fleet.manage("status", "--env=staging", "--json")
    report = json.loads(status.stdout)
    assert report["fleet"]["consistent"] is False
    others = [h.address for h in fleet.hosts[1:]]
    assert report["fleet"]["releases"] == {killed: [canary.address], first: others}

    time.sleep(3)  # the dead deploy's heartbeat is silent past LOCK_EXPIRY
    code, _, stderr = fleet.deploy()
    assert code == 1
    assert f"An earlier deploy of {killed}" in stderr
    assert "manage.py repair --env=staging" in stderr
    assert canary.history()[-2]["event"] == "lock_expired"  # taken over, not broken by hand
    assert fleet.currents() == [killed, first, first]  # the refusal changed nothing

    repaired = fleet.manage("repair", "--env=staging", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    outcome = json.loads(repaired.stdout)
    assert (outcome["release"], outcome["hosts"]) == (first, [h.address for h in fleet.hosts])
    assert fleet.currents() == [first] * 3
    assert fleet.answers() == [(200, first)] * 3
    assert [h.releases() for h in fleet.hosts] == [[first]] * 3  # the killed one is gone
    assert not any((h.root / "journal").exists() for h in fleet.hosts)
    assert all(h.history()[-1]["event"] == "repair" for h in fleet.hosts)

    fleet.configure(strategy="parallel")
    again = deployed(fleet)["release"]
    assert fleet.answers() == [(200, again)] * 3
    status = fleet.manage("status", "--env=staging", "--json")
    assert json.loads(status.stdout)["fleet"]["consistent"] is True


def test_roles_from_an_inventory_put_the_worker_on_its_own_host(fleet_factory: Any) -> None:
    fleet: Fleet = fleet_factory(2)
    web, worker = fleet.hosts
    inventory = fleet.base / "inventory.jsonl"
    entries = [
        {**fleet.entry(web), "roles": ["web"]},
        {**fleet.entry(worker), "roles": ["worker"]},
    ]
    inventory.write_text(
        "# what the cloud lists\n" + "".join(json.dumps(e) + "\n" for e in entries)
    )
    heartbeat = fleet.base / "heartbeat.json"
    command = f"manage.py heartbeat --file {heartbeat} --interval 0.1"
    processes = {"worker": {"command": command, "settle": 3, "stop_timeout": 5}}

    def beat(release: str) -> dict[str, Any]:
        deadline, seen = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                seen = json.loads(heartbeat.read_text())
                if seen["release"] == release:
                    return dict(seen)
            time.sleep(0.1)
        raise AssertionError(f"no heartbeat from {release}; last: {seen}")

    fleet.configure(hosts_file=str(inventory), processes=processes)
    first = deployed(fleet)["release"]
    assert web.get() == (200, first)
    assert beat(first)["path"] == str(worker.root / "releases" / first)
    assert not (worker.root / "shared/run/gunicorn.json").exists()  # no web server there
    assert not (web.root / "shared/run/role-worker.json").exists()  # no worker here

    fleet.configure(hosts_command=f"cat {inventory}", processes=processes)
    second = deployed(fleet)["release"]
    assert web.get() == (200, second)
    assert beat(second)["path"] == str(worker.root / "releases" / second)

    back = fleet.manage("rollback", "--env=staging", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert web.get() == (200, first)
    assert beat(first)["path"] == str(worker.root / "releases" / first)
    assert fleet.currents() == [first, first]
