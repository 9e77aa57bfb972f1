"""``status``: the state of an environment, after any crash, without changing it."""

from __future__ import annotations

from typing import Any

from django_cd.pipeline import consistency, journal, processes
from django_cd.pipeline.target import Target


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
    return found
