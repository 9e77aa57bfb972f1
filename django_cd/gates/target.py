"""Target gates: the new code, with the target's settings and ``shared/.env``.

The commit is unpacked into a scratch directory outside the deploy root and
run with the current release's virtualenv (as ``deploy --dry-run`` does), or,
before the first deploy, with the deploying interpreter's. Nothing under the
root changes. One process answers settings, ``check --deploy``, missing
migrations and the database; the engine's migration probe answers the
pending plan and its lints.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django_cd.gates.result import Gate, fail, ok, warn
from django_cd.pipeline import Target, migrations
from django_cd.pipeline.agent import agents
from django_cd.pipeline.errors import PipelineError, StepFailed
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.release import Release
from django_cd.pipeline.secrets import mask
from django_cd.pipeline.server import ManagedServer

MARKER = "@@django-cd-gates@@"
MIB = 1024 * 1024
# Lint kinds that may break the running release or cannot be undone.
RISKY_KINDS = ("irreversible", "backward-incompatible")

# Runs in the scratch release through `manage.py shell`: only Django's own API,
# so it works whichever django-cd the release carries.
PROBE_CODE = """
import io, json, os
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections, DEFAULT_DB_ALIAS
connection = connections[DEFAULT_DB_ALIAS]
sqlite_file = connection.vendor == "sqlite" and str(connection.settings_dict["NAME"])
new_sqlite = bool(sqlite_file) and sqlite_file != ":memory:" and not os.path.exists(sqlite_file)
out = {}
buffer = io.StringIO()
try:
    call_command("check", deploy=True, fail_level=%(level)r, stdout=buffer, stderr=buffer)
    out["check"] = {"ok": True, "output": buffer.getvalue()}
except SystemCheckError as error:
    out["check"] = {"ok": False, "output": str(error)}
buffer = io.StringIO()
try:
    call_command("makemigrations", check=True, dry_run=True, stdout=buffer, stderr=buffer)
    out["makemigrations"] = {"ok": True, "output": buffer.getvalue()}
except SystemExit as error:
    out["makemigrations"] = {"ok": not error.code, "output": buffer.getvalue()}
if new_sqlite:
    # Connecting created an empty file (makemigrations reads the history): predeploy
    # changes nothing, so it goes again.
    connection.close()
    if os.path.exists(sqlite_file) and os.path.getsize(sqlite_file) == 0:
        os.remove(sqlite_file)
    out["database"] = {"ok": True, "vendor": "sqlite", "size": 0, "new": True}
    print(%(marker)r + json.dumps(out))
    raise SystemExit(0)
try:
    connection.ensure_connection()
    size = None
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        size = os.path.getsize(name) if os.path.exists(name) else 0
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
    out["database"] = {"ok": True, "vendor": connection.vendor, "size": size}
except Exception as error:
    out["database"] = {"ok": False, "error": f"{type(error).__name__}: {error}".strip()}
print(%(marker)r + json.dumps(out))
"""


@dataclass(frozen=True)
class Probe:
    """What the scratch release said, or why it could not say it."""

    data: dict[str, Any] | None
    output: str


@contextmanager
def scratch_release(target: Target, repo: Repository, commit: str) -> Iterator[Release]:
    """``commit`` unpacked outside the root, linked to a virtualenv; removed afterwards."""
    host = target.host
    scratch = host.make_temp_dir()
    try:
        host.extract_tar(repo.archive(commit), scratch)
        release = Release(target.env, host, target.layout, "predeploy", location=scratch)
        host.switch_link(release.venv, _venv(target))
        yield release
    finally:
        host.remove(scratch)


def _venv(target: Target) -> str:
    current = target.layout.current_release(target.host)
    if current is not None:
        link = target.host.readlink(target.release(current).venv)
        if link is not None:
            return posixpath.join(target.layout.venvs, posixpath.basename(link))
    # Before the first deploy there is no release virtualenv yet.
    return sys.prefix


def target_gates(target: Target, repo: Repository, commit: str) -> list[Gate]:
    """settings, check, migrations, database, plan, disk, reload, in a scratch release
    (``predeploy``, ``deploy --dry-run``)."""
    # One Django process answers both questions asked of the new code (pipeline.agent).
    with scratch_release(target, repo, commit) as release, agents(target.host):
        return release_gates(target, release, len(repo.archive(commit))).gates


@dataclass(frozen=True)
class Verdict:
    """The target gates, and what the deploy's ``check`` step reports from them."""

    gates: list[Gate]
    #: ``check --deploy``'s output (None when the settings did not import).
    check_output: str | None


def release_gates(
    target: Target, release: Release, archive_size: int, *, unpacked: bool = False
) -> Verdict:
    """The target gates asked of ``release``: a scratch release, or the deploy's own new
    release before anything else runs in it (its agent then serves the whole deploy)."""
    secrets = target.secrets()
    level = "WARNING" if target.env.strict else "ERROR"
    code = PROBE_CODE % {"level": level, "marker": MARKER}
    result = release.manage("shell", "-v", "0", "-c", code, timeout=300)
    probe = Probe(_payload(result.output), mask(result.output, secrets))
    gates = [_settings_gate(target, probe)]
    if probe.data is None:
        return Verdict(gates, None)
    gates += [
        _check_gate(target, probe.data["check"], level, secrets),
        _makemigrations_gate(probe.data["makemigrations"], secrets),
        _database_gate(target, probe.data["database"], secrets),
    ]
    report = None
    if probe.data["database"].get("new"):
        gates.append(ok("plan", "A new database: every migration runs."))
    elif probe.data["database"]["ok"]:
        report, plan = _plan_gate(target, release, secrets)
        gates.append(plan)
    gates.append(
        disk_gate(target, archive_size, probe.data["database"], report, unpacked=unpacked)
    )
    gates.append(_reload_gate(target))
    return Verdict(gates, mask(probe.data["check"]["output"], secrets))


def _payload(output: str) -> dict[str, Any] | None:
    payload = None
    for line in output.splitlines():
        if line.startswith(MARKER):
            payload = json.loads(line[len(MARKER) :])
    return payload


def _error_text(output: str, limit: int = 800) -> str:
    """The error a failed process ended with: the exception, not the traceback above it."""
    lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
    start = 0
    frames = [i for i, line in enumerate(lines) if line.lstrip().startswith('File "')]
    if frames:
        # The exception starts at the first unindented line after the last frame.
        after = [i for i in range(frames[-1] + 1, len(lines)) if not lines[i][0].isspace()]
        start = after[0] if after else frames[-1] + 1
    text = " ".join(line.strip() for line in lines[start:]) or "(no output)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _settings_gate(target: Target, probe: Probe) -> Gate:
    env = target.env
    if probe.data is not None:
        return ok("settings", f"{env.settings} imports with {target.layout.env_file}.")
    return fail(
        "settings",
        f"{env.settings} cannot be imported with {target.layout.env_file}: "
        f"{_error_text(probe.output)}",
        f"Add the missing variables to {target.layout.env_file} (or fix the settings module); "
        "the other target gates run once the settings import.",
    )


def _check_gate(target: Target, check: dict[str, Any], level: str, secrets: list[str]) -> Gate:
    command = f"check --deploy --fail-level {level}"
    if check["ok"]:
        return ok("check", f"{command}: no issue at {level} or above.")
    issues = [
        line.strip()
        for line in mask(check["output"], secrets).splitlines()
        if line.strip().startswith("?:") or ": (" in line
    ]
    return fail(
        "check",
        f"{command} fails: " + "; ".join(issues[:5]) + (" ..." if len(issues) > 5 else ""),
        f"Fix them in {target.env.settings}; run DJANGO_SETTINGS_MODULE={target.env.settings} "
        f"manage.py {command} to see them all.",
    )


def _makemigrations_gate(result: dict[str, Any], secrets: list[str]) -> Gate:
    if result["ok"]:
        return ok("migrations", "No model change lacks a migration.")
    return fail(
        "migrations",
        "Model changes have no migration: " + _last_line(mask(result["output"], secrets)),
        "Run manage.py makemigrations, commit the migrations, and deploy that commit.",
    )


def _database_gate(target: Target, database: dict[str, Any], secrets: list[str]) -> Gate:
    if database.get("new"):
        return ok("database", "The sqlite database file does not exist yet: migrate creates it.")
    if database["ok"]:
        return ok("database", f"The {database['vendor']} database answers.")
    return fail(
        "database",
        f"The database is not reachable: {mask(database['error'], secrets)}",
        f"Check DATABASE_URL (or the settings' DATABASES) in {target.layout.env_file} "
        "and that the database server runs.",
    )


def _plan_gate(
    target: Target, release: Release, secrets: list[str]
) -> tuple[migrations.MigrationReport | None, Gate]:
    try:
        report = migrations.probe(release, lint=True)
    except StepFailed as error:
        output = mask(error.output or "", secrets)
        return None, fail("plan", f"The pending migrations cannot be read: {_last_line(output)}")
    if not report.pending:
        return report, ok("plan", "No migration to apply.")
    shown = ", ".join(report.pending[:5])
    more = f" and {len(report.pending) - 5} more" if len(report.pending) > 5 else ""
    pending = f"{len(report.pending)} migration(s) to apply: {shown}{more}."
    findings = [
        f for f in (report.lints or {}).get("findings", []) if f.get("kind") in RISKY_KINDS
    ]
    if not findings:
        return report, ok("plan", pending)
    described = "; ".join(
        f"{f['app']}.{f['migration']}: {f['kind']} ({f['operation']})" for f in findings
    )
    if target.env.strict:
        return report, fail(
            "plan",
            f"{pending} Risky on {target.env.name}: {described}.",
            "Split the change (expand, deploy, contract), or deploy with --force --reason "
            "after taking the risk on knowingly (a backup is taken first).",
            overridable=True,
        )
    return report, warn("plan", f"{pending} Risky: {described}.", "Allowed here; live refuses it.")


def disk_gate(
    target: Target,
    archive_size: int,
    database: dict[str, Any] | None = None,
    report: migrations.MigrationReport | None = None,
    *,
    unpacked: bool = False,
) -> Gate:
    """Room for the release and its static files, and for the backup when one is taken.

    ``database`` None: before the new code ran (a deploy asks again in its release);
    ``unpacked``: the release is on the disk already, its static files are not.
    """
    backup = database is not None and (
        target.env.backup == "always"
        or (target.env.backup == "auto" and (report is None or bool(report.pending)))
    )
    db_size = database.get("size") if database is not None and backup else 0
    needed = (1 if unpacked else 2) * archive_size + (db_size or 0)
    where, free = target.host.free_space(target.env.root)
    summary = f"{free / MIB:.0f} MiB free at {where}; about {needed / MIB:.1f} MiB needed"
    if backup and db_size is None:
        summary += " (the backup's size is unknown for this database)"
    if database is None:
        summary += " (a backup's room is weighed in the new release)"
    if free < needed:
        return fail(
            "disk",
            summary + ".",
            f"Free space on the filesystem of {target.env.root} on {target.host.name}.",
        )
    return ok("disk", summary + ".")


def _reload_gate(target: Target) -> Gate:
    server = target.env.server
    if server.type == "none":
        return ok("reload", "No app server is managed (server type none).")
    if server.type == "command":
        words = shlex.split(str(server.get("reload", "")))
        program = words[0] if words else ""
        if program and shutil.which(program):
            return ok("reload", f"The reload command {program} exists.")
        return fail(
            "reload",
            f"The reload command {program or '(empty)'!r} is not found on PATH.",
            "Fix the server's 'reload' command, or install it.",
        )
    try:
        status = target.server.status()
    except PipelineError as error:
        return fail("reload", f"The {server.type} server's state cannot be read: {error}")
    if not status.running and isinstance(target.server, ManagedServer):
        # The deploy would start it: an address another process holds fails now,
        # not after the migrations.
        problem = target.server.bind_problem()
        if problem:
            return fail("reload", problem)
    if not status.running:
        return warn(
            "reload",
            f"{server.type} is not running: the deploy starts it.",
            f"manage.py server start --env={target.env.name} starts it now.",
        )
    fifo = server.get("fifo")
    if server.type == "uwsgi" and fifo and not target.host.exists(str(fifo)):
        return fail(
            "reload",
            f"uwsgi runs (pid {status.pid}) but its master FIFO {fifo} is missing.",
            "Restart uwsgi with the FIFO configured (manage.py server restart).",
        )
    return ok("reload", f"{server.type} runs (pid {status.pid}): a graceful reload is possible.")
