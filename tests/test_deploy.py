"""deploy, rollback, releases and server, run for real as a user runs them.

Each test gets its own scratch project with staging deployed once (the
``staging`` fixture): real git, real ``manage.py`` processes, a real
virtualenv (built once per session and linked in), SQLite and gunicorn on a
free loopback port. Any test runs alone and in any order.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Deployed
from tests.pipeline_support import (
    Project,
    commit_all,
    current,
    db_snapshot,
    get,
    git,
    history,
    set_title,
    write_file,
)

STEPS = [
    "upload", "venv", "check", "clean_pyc", "collectstatic", "serve_check", "plan", "backup",
    "migrate", "switch", "reload", "processes", "smoke", "finish",
]  # fmt: skip

IRREVERSIBLE = """from django.db import migrations, models


def stamp(apps, schema_editor):
    apps.get_model("notes", "Note").objects.update(colour="green")


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "colour", models.CharField(max_length=20, default="yellow")),
        migrations.RunPython(stamp),
    ]
"""


def after_gates(stdout: str) -> list[str]:
    """The deploy's own lines: what follows the predeploy gates' table."""
    lines = stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if ": may deploy." in line)
    assert lines[0].startswith("Predeploy gates for ")
    return lines[end + 1 :]


def releases_on_disk(project: Project) -> list[str]:
    return sorted(p.name for p in (project.root("staging") / "releases").iterdir())


def test_first_deploy(staging: Deployed) -> None:
    project, data = staging.project, staging.first
    commit = git(project.repo, "rev-parse", "HEAD").strip()
    assert data["status"] == "success"
    assert data["commit"] == commit and len(commit) == 40
    assert data["release"] == current(project)
    assert data["url"] == project.url("staging")
    assert [s["name"] for s in data["steps"]] == STEPS
    statuses = {s["name"]: s["status"] for s in data["steps"]}
    # A fresh git archive has no .pyc to clean: the step says so instead of running.
    assert statuses.pop("clean_pyc") == "skipped"
    assert statuses.pop("processes") == "skipped"  # the environment has no role processes
    assert set(statuses.values()) == {"ok"}
    assert data["tag"] == "cd/staging/1"
    assert git(project.repo, "rev-list", "-n", "1", "cd/staging/1").strip() == commit

    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, data["release"])
    assert '<h1><a href="/">Notes board</a></h1>' in body

    manifest = json.loads(
        (project.root("staging") / "releases" / data["release"] / "release.json").read_text()
    )
    assert manifest["commit"] == commit
    assert manifest["status"] == "deployed"
    assert manifest["deployed_by"]["git"] == "Dee Ployer <dee@example.com>"
    assert manifest["migrations"]["notes"] == "0002_note_author_pinned"
    assert manifest["backup"]["path"].endswith(f"shared/backups/{data['release']}.dump")
    [entry] = history(project)
    assert (entry["event"], entry["status"], entry["release"]) == (
        "deploy",
        "success",
        data["release"],
    )
    assert not (project.root("staging") / "journal").exists()


def test_dry_run_changes_nothing(staging: Deployed) -> None:
    project = staging.project
    commit = set_title(project, "Notes board v2")
    before = (releases_on_disk(project), len(history(project)))
    result = project.manage("deploy", "--env=staging", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert after_gates(result.stdout) == [
        f"Dry run: deploy {commit} (Title: Notes board v2) to staging",
        f"  current release: {staging.release}",
        "  steps: " + ", ".join(s for s in STEPS if s not in ("backup", "processes")),
        "  backup: no",
        "  environment (shared/.env): unchanged",
        "  migrations: none",
        "Nothing was changed.",
    ]
    assert (releases_on_disk(project), len(history(project))) == before
    assert git(project.repo, "tag", "--list", "cd/staging/2") == ""


def test_code_only_deploy_reuses_the_venv(staging: Deployed) -> None:
    project = staging.project
    set_title(project, "Notes board v2")
    venvs = sorted(p.name for p in (project.root("staging") / "venvs").iterdir())
    result = project.manage("deploy", "--env=staging")
    assert result.returncode == 0, result.stderr
    lines = after_gates(result.stdout)
    assert lines[0] == f"Deploying HEAD to staging ({project.root('staging')})"
    n = len(STEPS)
    assert [line.split()[0] for line in lines[1 : n + 1]] == STEPS
    assert lines[2].split()[1:] == ["ok", lines[2].split()[2], "reused", f"venvs/{venvs[0]}"]
    assert lines[1 + STEPS.index("backup")].split()[:2] == ["backup", "skipped"]
    # Nothing pending: no migrate process is started at all.
    migrate = lines[1 + STEPS.index("migrate")]
    assert migrate.split()[:2] == ["migrate", "skipped"]
    assert migrate.endswith("no migrations pending (the plan found none)")
    release = current(project)
    assert lines[n + 1].startswith(f"Deploy of {release} to staging succeeded in ")
    assert lines[n + 1].endswith(" s, tagged cd/staging/2.")
    status, served, body = get(project.url("staging"))
    assert (status, served) == (200, release)
    assert "Notes board v2" in body
    assert sorted(p.name for p in (project.root("staging") / "venvs").iterdir()) == venvs


def test_one_agent_answers_the_gates_and_unchanged_static_files_are_copied(
    staging: Deployed,
) -> None:
    project = staging.project
    css = project.repo / "sampleproject" / "notes" / "static" / "notes" / "board.css"
    set_title(project, "Same static files")
    code, data, _ = project.deploy()
    assert code == 0
    steps = {step["name"]: step for step in data["steps"]}
    # The target gates ran in the new release, in its check step (no scratch release).
    assert steps["check"]["detail"].startswith(
        "gates settings, check, migrations, database, plan, disk, reload passed; check --deploy: "
    )
    assert steps["collectstatic"]["status"] == "skipped"
    assert steps["collectstatic"]["detail"].startswith(
        f"static inputs unchanged since {staging.release}: copied its "
    )
    root = project.root("staging") / "releases"
    manifest = json.loads((root / data["release"] / "release.json").read_text())
    before = json.loads((root / staging.release / "release.json").read_text())
    assert manifest["static"]["fingerprint"] == before["static"]["fingerprint"]
    assert get(project.url("staging"), "static/notes/board.css")[2] == css.read_text()

    css.write_text(css.read_text() + "/* changed */\n")
    commit_all(project.repo, "A static file changes")
    code, data, _ = project.deploy()
    assert code == 0
    collect = next(step for step in data["steps"] if step["name"] == "collectstatic")
    assert (collect["status"], collect["detail"].split()[1:3]) == ("ok", ["static", "files"])
    assert get(project.url("staging"), "static/notes/board.css")[2].endswith("/* changed */\n")


def test_committed_pyc_files_are_cleaned(staging: Deployed) -> None:
    project = staging.project
    stale = "sampleproject/notes/old_views.pyc"  # its .py is long gone
    git(project.repo, "checkout", "-q", "-B", "with-pyc", "main")
    write_file(project.repo / stale, "not really bytecode")
    git(project.repo, "add", "--force", stale)  # .gitignore keeps them out, unless forced
    git(project.repo, "commit", "-q", "-m", "A stale .pyc, committed by mistake")
    git(project.repo, "checkout", "-q", "main")
    code, data, stderr = project.deploy("staging", "--ref=with-pyc")
    assert code == 0, stderr
    [clean] = [s for s in data["steps"] if s["name"] == "clean_pyc"]
    assert clean["status"] == "ok"
    assert not (project.root("staging") / "releases" / data["release"] / stale).exists()


def test_a_release_is_byte_compiled_once_taking_the_unchanged_files_bytecode(
    staging: Deployed,
) -> None:
    project = staging.project
    releases = project.root("staging") / "releases"
    first = releases / staging.release
    set_title(project, "Compiled once")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    second = releases / data["release"]
    [upload] = [s for s in data["steps"] if s["name"] == "upload"]
    # The commit changed one file (views.py): only it is compiled again.
    assert "byte-compiled 1 file(s), " in upload["detail"]
    assert f" unchanged since {staging.release}" in upload["detail"]

    def cached(release: Path, name: str) -> Path:
        return Path(importlib.util.cache_from_source(str(release / name)))

    models, views = "sampleproject/notes/models.py", "sampleproject/notes/views.py"
    assert cached(second, models).stat().st_ino == cached(first, models).stat().st_ino
    assert cached(second, views).stat().st_ino != cached(first, views).stat().st_ino
    # Hash-checked bytecode of what the release holds, whatever its timestamps.
    header = cached(second, views).read_bytes()[:16]
    assert header[4:8] == (0b11).to_bytes(4, "little")
    assert header[8:] == importlib.util.source_hash((second / views).read_bytes())
    status, served, body = get(project.url("staging"))
    assert (status, served) == (200, data["release"]) and "Compiled once" in body


def deploy_title(project: Project, title: str) -> str:
    set_title(project, title)
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    return str(data["release"])


def test_rollback_serves_the_previous_release(staging: Deployed) -> None:
    # How fast is a benchmark's question (benchmarks/deploy.py), not a timed test's.
    project = staging.project
    second = deploy_title(project, "Notes board v2")
    result = project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    status, served, body = get(project.url("staging"))
    assert (status, served) == (200, staging.release)
    assert "Notes board v2" not in body
    data = json.loads(result.stdout)
    assert (data["status"], data["release"], data["previous"]) == (
        "success",
        staging.release,
        second,
    )
    assert [s["name"] for s in data["steps"]] == ["plan", "database", "switch", "reload", "smoke"]
    assert data["steps"][0]["detail"] == (f"database matches {second}; 0 migration(s) to unapply")
    assert data["steps"][1]["status"] == "skipped"
    # Mirrored into the database too (by the newer release, whose Django already ran).
    import sqlite3

    with sqlite3.connect(project.root("staging") / "shared" / "db.sqlite3") as connection:
        rows = connection.execute(
            "SELECT action, status, release FROM django_cd_deployment ORDER BY id"
        ).fetchall()
    assert rows[-1] == ("rollback", "success", staging.release)


def test_releases_lists_what_is_on_the_host(staging: Deployed) -> None:
    project = staging.project
    second = deploy_title(project, "Notes board v2")
    assert project.manage("rollback", "--env=staging").returncode == 0
    result = project.manage("releases", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    # Newest first, as the text listing.
    assert [(r["id"], r["current"], r["status"]) for r in rows] == [
        (second, False, "rolled_back"),
        (staging.release, True, "deployed"),
    ]
    for row in rows:
        assert len(row["commit"]) == 40
        assert row["deployed_by"].endswith("(Dee Ployer <dee@example.com>)")
        assert row["deployed_at"].startswith("20")
    assert rows[1]["backup"].endswith(f"{staging.release}.dump")
    assert rows[0]["backup"] is None
    text = project.manage("releases", "--env=staging").stdout.splitlines()
    assert text[0].startswith(f"  {second} ")
    assert text[1].startswith(f"* {staging.release} ")


def test_new_requirements_get_a_new_venv_and_master(staging: Deployed) -> None:
    project = staging.project
    pid_before = project.manage("server", "status", "--env=staging", "--json").stdout
    requirements = project.repo / "sampleproject" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# pinned by ops\n")
    commit_all(project.repo, "Requirements comment")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["venv"]["detail"].startswith("built venvs/")
    built = steps["venv"]["detail"].removeprefix("built venvs/")
    assert steps["reload"]["detail"].startswith("new gunicorn master (pid ")
    assert len(list((project.root("staging") / "venvs").iterdir())) == 2
    pid_after = project.manage("server", "status", "--env=staging", "--json").stdout
    assert json.loads(pid_after)["pid"] != json.loads(pid_before)["pid"]
    status, served, _ = get(project.url("staging"))
    assert (status, served) == (200, data["release"])
    # Back and forth: each release runs from its own virtualenv; neither is pruned.
    assert project.manage("rollback", "--env=staging").returncode == 0
    assert get(project.url("staging"))[:2] == (200, staging.release)
    assert (project.root("staging") / "venvs" / built / "bin" / "python").exists()


def test_irreversible_migration_needs_with_db(staging: Deployed) -> None:
    project = staging.project
    db = project.root("staging") / "shared" / "db.sqlite3"
    before = db_snapshot(db)
    migrations = project.repo / "sampleproject" / "notes" / "migrations"
    write_file(migrations / "0003_note_colour.py", IRREVERSIBLE)
    commit_all(project.repo, "Colour, stamped green")
    dry_run = project.manage("deploy", "--env=staging", "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr
    lines = dry_run.stdout.splitlines()
    assert "  migrations: notes.0003_note_colour" in lines
    [lints] = [line for line in lines if line.startswith("  lints: ")]
    assert lints.startswith(
        "  lints: 1 migration(s) to apply on 'default' (sqlite): needs restore (1 irreversible"
    )
    assert any(line.startswith("    notes.0003_note_colour: irreversible: ") for line in lines), (
        lines
    )
    assert db_snapshot(db) == before
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    assert data["migrations"] == ["notes.0003_note_colour"]
    assert data["backup"].endswith(f"{data['release']}.dump")

    refused = project.manage("rollback", "--env=staging")
    assert refused.returncode == 1
    assert (
        f"CommandError: ROLLBACK FAILED at step 'plan': Rolling back to {staging.release} "
        "needs to unapply notes.0003_note_colour (RunPython cannot be reversed). Run again "
        f"with --with-db to restore the backup recorded for {staging.release}, or pick a "
        "later release with --to." in refused.stderr
    )
    assert current(project) == data["release"]
    assert db_snapshot(db) != before

    restored = project.manage("rollback", "--env=staging", "--with-db", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert current(project) == staging.release
    assert db_snapshot(db) == before
    assert get(project.url("staging"))[:2] == (200, staging.release)


def write_lock(project: Project, pid: int, since: str | None = None) -> None:
    lock = {
        "user": "alice",
        "host": socket.gethostname(),
        "pid": pid,
        "since": since or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "action": "deploy of 0123456789ab",
    }
    (project.root("staging") / ".lock").write_text(json.dumps(lock))


def test_a_held_lock_refuses_at_once(staging: Deployed) -> None:
    project = staging.project
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 600))
    write_lock(project, os.getpid(), since=since)
    before = releases_on_disk(project)
    try:
        code, _, stderr = project.deploy()
    finally:
        (project.root("staging") / ".lock").unlink()
    assert code == 1
    assert stderr.strip() == (
        f"CommandError: Another deploy holds the lock: alice@{socket.gethostname()} "
        f"(pid {os.getpid()}) since {since} for deploy of 0123456789ab. "
        "Wait for it to finish, then run again."
    )
    assert releases_on_disk(project) == before  # refused before any step ran


def test_a_stale_lock_is_broken_only_when_asked(staging: Deployed) -> None:
    project = staging.project
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(project, gone.pid)
    code, _, stderr = project.deploy()
    assert code == 1
    assert f"CommandError: The lock is stale (pid {gone.pid} is gone): alice@" in stderr
    assert "Make sure no deploy is running, then run again with --break-lock." in stderr
    assert (project.root("staging") / ".lock").exists()

    code, _, stderr = project.deploy("staging", "--break-lock")
    assert code == 0, stderr
    broken = [e for e in history(project) if e["event"] == "lock_broken"]
    assert len(broken) == 1
    assert broken[0]["stale_lock"].startswith(f"alice@{socket.gethostname()} (pid {gone.pid})")
    assert not (project.root("staging") / ".lock").exists()


def test_breaking_an_unreadable_lock_is_recorded_too(staging: Deployed) -> None:
    project = staging.project
    (project.root("staging") / ".lock").write_text("")  # what a full disk once left
    code, _, stderr = project.deploy()
    assert code == 1
    assert "The lock is stale (the lock file cannot be read): an unreadable lock file." in stderr
    code, _, stderr = project.deploy("staging", "--break-lock")
    assert code == 0, stderr
    [broken] = [e for e in history(project) if e["event"] == "lock_broken"]
    assert broken["stale_lock"] == "an unreadable lock file ('')"


def test_ctrl_c_undoes_and_frees_the_lock(staging: Deployed) -> None:
    project = staging.project
    requirements = project.repo / "sampleproject" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# interrupted\n")
    commit_all(project.repo, "Requirements for an interrupted deploy")
    venvs = project.root("staging") / "venvs"
    known = {p.name for p in venvs.iterdir()}
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
    process = subprocess.Popen(
        [sys.executable, str(project.repo / "sampleproject" / "manage.py"), "deploy",
         "--env=staging"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ({p.name for p in venvs.iterdir()} - known):
            time.sleep(0.05)
        time.sleep(0.5)  # pip is installing now
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stdout + stderr
    assert (
        "CommandError: Deploy interrupted (Ctrl-C or SIGTERM): undone as far as it had gone; "
        in stderr
    )
    assert not (project.root("staging") / ".lock").exists()
    assert current(project) == staging.release
    assert releases_on_disk(project) == [staging.release]
    assert get(project.url("staging"))[:2] == (200, staging.release)
    for new in {p.name for p in venvs.iterdir()} - known:
        assert not (venvs / new / ".django-cd-complete").exists()
    last = history(project)[-1]
    assert (last["status"], last["error"], last["failed_step"]) == (
        "failed",
        "Interrupted (Ctrl-C or SIGTERM).",
        "venv",
    )


def test_old_releases_are_pruned(staging: Deployed) -> None:
    project = staging.project
    backups = project.root("staging") / "shared" / "backups"
    second = deploy_title(project, "Two")
    write_file(project.repo / "sampleproject/notes/migrations/0003_note_colour.py", IRREVERSIBLE)
    commit_all(project.repo, "Colour")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    third = data["release"]
    fourth = deploy_title(project, "Four")
    fifth = deploy_title(project, "Five")
    # KEEP_RELEASES is 3: the first went, with its backup; the second stays as the
    # state the third's backup holds.
    assert releases_on_disk(project) == [second, third, fourth, fifth]
    names = sorted(p.name for p in backups.iterdir())
    assert f"{staging.release}.dump" not in names
    assert f"{third}.dump" in names


def test_server_commands(staging: Deployed) -> None:
    project = staging.project
    status = project.manage("server", "status", "--env=staging")
    assert status.stdout.startswith("staging: running, pid ")
    stopped = project.manage("server", "stop", "--env=staging")
    assert stopped.stdout.startswith("stopped gunicorn (pid ")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", project.ports["staging"]), timeout=2).close()
    assert project.manage("server", "status", "--env=staging").stdout == "staging: stopped\n"
    started = project.manage("server", "start", "--env=staging")
    assert started.returncode == 0, started.stderr
    assert started.stdout == (
        f"started gunicorn (pid {started.stdout.split('pid ')[1].split(')')[0]}) "
        f"on 127.0.0.1:{project.ports['staging']}\n"
    )
    assert get(project.url("staging"))[:2] == (200, staging.release)


def test_rollback_needs_the_files_not_the_database(staging: Deployed) -> None:
    import sqlite3

    project = staging.project
    deploy_title(project, "Two")
    db = project.root("staging") / "shared" / "db.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE django_cd_deployment")
    result = project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "success"
    assert data["release"] == current(project) == staging.release
    [warning] = data["warnings"]
    assert warning.startswith("The deployment was not mirrored into the database: ")
    assert "no such table: django_cd_deployment" in warning
    assert history(project)[-1]["status"] == "success"


def test_rollback_and_server_work_from_a_broken_checkout(staging: Deployed) -> None:
    project = staging.project
    second = deploy_title(project, "Two")
    # A merge left conflict markers in version.txt: the checkout's checks fail...
    version = project.repo / "sampleproject" / "notes" / "migrations" / "version.txt"
    version.write_text("<<<<<<< HEAD\n0002_a\n=======\n0002_b\n>>>>>>> theirs\n")
    check = project.manage("check")
    assert check.returncode == 1
    assert "django_cd.E031" in check.stderr
    # ...but stopping, listing, status and rolling back are not held hostage by them.
    assert project.manage("server", "status", "--env=staging").returncode == 0
    assert project.manage("releases", "--env=staging").returncode == 0
    assert project.manage("status", "--env=staging").returncode == 0
    for release in (staging.release, second):
        result = project.manage("rollback", "--env=staging", "--json", f"--to={release}")
        assert result.returncode == 0, result.stderr
        assert get(project.url("staging"))[:2] == (200, release)


def test_status_of_a_healthy_environment(staging: Deployed) -> None:
    project = staging.project
    result = project.manage("status", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["current"] == staging.release
    assert report["current_commit"] == staging.first["commit"]
    assert (report["lock"], report["interrupted"], report["running"]) == (None, None, None)
    assert report["database"] == {
        "release": staging.release,
        "matches_current": True,
        "missing": [],
        "unknown": [],
        "error": None,
    }
    assert report["server"]["running"] is True
    assert report["problems"] == []
    text = project.manage("status", "--env=staging").stdout.splitlines()
    assert text[1:4] == [
        f"  current:     {staging.release} ({staging.first['commit'][:12]})",
        "  lock:        free",
        "  interrupted: none",
    ]
    assert text[4] == f"  database:    matches {staging.release}"


def test_a_tag_that_cannot_be_written_costs_only_the_tag(staging: Deployed) -> None:
    """The tag is written after the release is marked deployed: a repository that
    refuses it (here a stale lock file of git's) leaves a deploy that rollback knows."""
    project = staging.project
    tags = git(project.repo, "tag", "--list", "cd/staging/*").split()
    lock = project.repo / ".git" / "refs" / "tags" / "cd" / "staging" / f"{len(tags) + 1}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    try:
        set_title(project, "Notes board, untagged")
        code, data, stderr = project.deploy()
    finally:
        lock.unlink()
    assert code == 0, stderr
    assert data["tag"] is None
    [warning] = [w for w in data["warnings"] if "not tagged" in w]
    assert f"{len(tags) + 1}.lock" in warning
    manifest = project.root("staging") / "releases" / data["release"] / "release.json"
    assert json.loads(manifest.read_text())["status"] == "deployed"
    result = project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["release"] == staging.release
