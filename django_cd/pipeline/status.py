"""``status``: the state of an environment, after any crash, without changing it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django_cd.pipeline import consistency, journal, processes
from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.fleet import each
from django_cd.pipeline.target import Target

#: What ``fleet_status`` shows of each host.
HOST_FIELDS = ("current", "current_commit", "interrupted", "running", "server", "processes")


def environment_status(target: Target, *, database: bool = True) -> dict[str, Any]:
    """Current release, lock, an interrupted command, database vs code, app server.

    ``database=False`` skips the one slow question (a process in the current
    release asking the database).
    """
    host, layout = target.host, target.layout
    deployed = host.exists(layout.root)
    current = layout.current_release(host) if deployed else None
    report: dict[str, Any] = {
        "env": target.env.name,
        "root": layout.root,
        "current": current,
        "current_commit": layout.read_manifest(host, current).get("commit") if current else None,
        "lock": _lock(target) if deployed else None,
        "interrupted": None,
        "running": None,
        "database": None,
        "server": None,
    }
    data = journal.read(host, layout) if deployed else None
    if data is not None:
        dead = journal.interrupted(host, layout)
        if dead is None:
            report["running"] = {k: data.get(k) for k in ("action", "release", "step", "pid")}
        else:
            report["interrupted"] = dead.as_dict()
            report["interrupted"]["needs_repair"] = journal.needs_repair(dead)
    if database:
        report["database"] = consistency.check(target).as_dict()
    server = target.server.status()
    report["server"] = {"running": server.running, "pid": server.pid, "detail": server.detail}
    report["processes"] = processes.RoleProcesses(target).status()  # issue 14 §7
    return report


def fleet_status(targets: Sequence[Target], *, database: bool = True) -> dict[str, Any]:
    """``environment_status`` of the first host (the lock, the history, the database),
    and for a fleet each host's release, interrupted command and server, and whether
    the fleet is on one release. A host that cannot be reached is a finding, not an
    error: status is what an operator runs when things are broken."""
    report = environment_status(targets[0], database=database)
    if len(targets) == 1:
        return report
    rows: dict[str, dict[str, Any]] = {}

    def look(target: Target) -> None:
        name = target.host.name
        try:
            found = report if target is targets[0] else environment_status(target, database=False)
        except (PipelineError, OSError) as error:
            rows[name] = {"host": name, "reachable": False, "error": str(error)}
            return
        rows[name] = {"host": name, "reachable": True, **{k: found[k] for k in HOST_FIELDS}}

    each(list(targets), look)
    report["hosts"] = [rows[target.host.name] for target in targets]
    releases: dict[str, list[str]] = {}
    for row in report["hosts"]:
        if row["reachable"]:
            releases.setdefault(str(row["current"]), []).append(row["host"])
    report["fleet"] = {
        "releases": releases,
        "consistent": len(releases) == 1 and all(row["reachable"] for row in report["hosts"]),
    }
    return report


def _lock(target: Target) -> dict[str, Any] | None:
    found = target.lock().holder()
    if found is None:
        return None
    holder, stale = found
    return {
        "holder": holder.describe() if holder else None,
        "pid": holder.pid if holder else None,
        "stale": stale is not None,
        "why_stale": stale,
    }


def problems(report: dict[str, Any]) -> list[str]:
    """What the operator must act on, one sentence each, with the command to run."""
    env = report["env"]
    found = []
    if report["interrupted"] and report["interrupted"]["needs_repair"]:
        found.append(
            f"An interrupted {report['interrupted']['description']}. Run manage.py repair "
            f"--env={env} to undo it (or --forward to finish it)."
        )
    elif report["interrupted"]:
        found.append(
            f"An interrupted {report['interrupted']['description']}, before it changed "
            "anything outside its release: the next deploy cleans it up."
        )
    lock = report["lock"]
    if lock and lock["stale"]:
        found.append(
            f"The lock is stale ({lock['why_stale']}): {lock['holder'] or 'unreadable'}. "
            f"manage.py repair --env={env} breaks it when the interrupted command holds it; "
            "otherwise run the next command with --break-lock."
        )
    database = report["database"]
    if database and database["matches_current"] is False:
        check = consistency.DatabaseCheck(
            database["release"], False, database["missing"], database["unknown"]
        )
        found.append(check.problem(env) or "")
    elif database and database["matches_current"] is None:
        found.append(
            f"The database could not be compared with the current release: {database['error']}"
        )
    found += processes.problems(report.get("processes") or [], report["current"])
    return found + _fleet_problems(report)


def _fleet_problems(report: dict[str, Any]) -> list[str]:
    env = report["env"]
    found = []
    for row in report.get("hosts", [])[1:]:  # the first host's are the report's own
        if not row["reachable"]:
            found.append(f"Host {row['host']} cannot be reached: {row['error']}")
        elif row["interrupted"]:
            found.append(
                f"On {row['host']}: an interrupted {row['interrupted']['description']}. "
                f"Run manage.py repair --env={env}."
            )
    fleet = report.get("fleet")
    if fleet and len(fleet["releases"]) > 1:
        where = "; ".join(
            f"{release} on {', '.join(hosts)}" for release, hosts in fleet["releases"].items()
        )
        found.append(
            f"The fleet is not on one release ({where}). Run manage.py deploy --env={env} "
            f"(or rollback --env={env}) to bring every host onto one."
        )
    return found
