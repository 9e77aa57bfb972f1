"""deploy, rollback, releases and server, run for real as a user runs them.

One scratch project for the module: real git, real ``manage.py`` processes,
a real virtualenv, SQLite and gunicorn on a free loopback port. The tests
build on each other in file order, like a day of deploys.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline_support import (
    Project,
    commit_all,
    current,
    db_snapshot,
    get,
    git,
    history,
    write_file,
)

STEPS = [
    "upload", "venv", "check", "clean_pyc", "collectstatic", "plan", "backup", "migrate",
    "switch", "reload", "smoke", "finish",
]  # fmt: skip
VIEWS = "sampleproject/notes/views.py"

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


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("deploy"))
    try:
        yield project
    finally:
        project.stop_servers()


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What earlier tests of the module deployed."""
    return {}


def set_title(project: Project, title: str) -> str:
    views = project.repo / VIEWS
    text = views.read_text()
    start = text.index('BOARD_TITLE = "') + len('BOARD_TITLE = "')
    views.write_text(text[:start] + title + text[text.index('"', start) :])
    return commit_all(project.repo, f"Title: {title}")


def releases_on_disk(project: Project) -> list[str]:
    return sorted(p.name for p in (project.root("staging") / "releases").iterdir())


def test_first_deploy(project: Project, state: dict[str, Any]) -> None:
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    commit = git(project.repo, "rev-parse", "HEAD").strip()
    assert data["status"] == "success"
    assert data["commit"] == commit and len(commit) == 40
    assert data["release"] == current(project)
    assert data["url"] == project.url("staging")
    assert [s["name"] for s in data["steps"]] == STEPS
    assert {s["status"] for s in data["steps"]} == {"ok"}
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
    state["v1"] = data["release"]
    state["venv_a"] = data["steps"][1]["detail"].removeprefix("built venvs/")


def test_dry_run_changes_nothing(project: Project, state: dict[str, Any]) -> None:
    commit = set_title(project, "Notes board v2")
    before = (releases_on_disk(project), len(history(project)))
    result = project.manage("deploy", "--env=staging", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Dry run: deploy {commit} (Title: Notes board v2) to staging",
        f"  current release: {state['v1']}",
        "  steps: " + ", ".join(s for s in STEPS if s != "backup"),
        "  backup: no",
        "  migrations: none",
        "Nothing was changed.",
    ]
    assert (releases_on_disk(project), len(history(project))) == before
    assert git(project.repo, "tag", "--list", "cd/staging/2") == ""


def test_code_only_deploy_reuses_the_venv(project: Project, state: dict[str, Any]) -> None:
    venvs = sorted(p.name for p in (project.root("staging") / "venvs").iterdir())
    result = project.manage("deploy", "--env=staging")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Deploying HEAD to staging ({project.root('staging')})"
    assert [line.split()[0] for line in lines[1:13]] == STEPS
    assert lines[2].split()[1:] == ["ok", lines[2].split()[2], "reused", f"venvs/{venvs[0]}"]
    assert lines[7].split()[:2] == ["backup", "skipped"]
    release = current(project)
    assert lines[13].startswith(f"Deploy of {release} to staging succeeded in ")
    assert lines[13].endswith(" s, tagged cd/staging/2.")
    status, served, body = get(project.url("staging"))
    assert (status, served) == (200, release)
    assert "Notes board v2" in body
    assert sorted(p.name for p in (project.root("staging") / "venvs").iterdir()) == venvs
    state["v2"] = release


def test_rollback_serves_the_previous_release(project: Project, state: dict[str, Any]) -> None:
    # How fast is a benchmark's question (benchmarks/deploy.py), not a timed test's.
    result = project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    status, served, body = get(project.url("staging"))
    assert (status, served) == (200, state["v1"])
    assert "Notes board v2" not in body
    data = json.loads(result.stdout)
    assert (data["status"], data["release"], data["previous"]) == (
        "success",
        state["v1"],
        state["v2"],
    )
    assert [s["name"] for s in data["steps"]] == ["database", "switch", "reload", "smoke"]
    assert data["steps"][0]["status"] == "skipped"


def test_releases_lists_what_is_on_the_host(project: Project, state: dict[str, Any]) -> None:
    result = project.manage("releases", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["id"], r["current"], r["status"]) for r in rows] == [
        (state["v1"], True, "deployed"),
        (state["v2"], False, "rolled_back"),
    ]
    for row in rows:
        assert len(row["commit"]) == 40
        assert row["deployed_by"].endswith("(Dee Ployer <dee@example.com>)")
        assert row["deployed_at"].startswith("20")
    assert rows[0]["backup"].endswith(f"{state['v1']}.dump")
    assert rows[1]["backup"] is None
    text = project.manage("releases", "--env=staging").stdout.splitlines()
    assert text[0].startswith(f"  {state['v2']} ")
    assert text[1].startswith(f"* {state['v1']} ")


def test_new_requirements_get_a_new_venv_and_master(
    project: Project, state: dict[str, Any]
) -> None:
    pid_before = project.manage("server", "status", "--env=staging", "--json").stdout
    requirements = project.repo / "sampleproject" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# pinned by ops\n")
    commit_all(project.repo, "Requirements comment")
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["venv"]["detail"].startswith("built venvs/")
    state["venv_b"] = steps["venv"]["detail"].removeprefix("built venvs/")
    assert steps["reload"]["detail"].startswith("new gunicorn master (pid ")
    assert len(list((project.root("staging") / "venvs").iterdir())) == 2
    pid_after = project.manage("server", "status", "--env=staging", "--json").stdout
    assert json.loads(pid_after)["pid"] != json.loads(pid_before)["pid"]
    status, served, body = get(project.url("staging"))
    assert (status, served) == (200, data["release"])
    assert "Notes board v2" in body
    state["v3"] = data["release"]


def test_irreversible_migration_needs_with_db(project: Project, state: dict[str, Any]) -> None:
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
        f"CommandError: ROLLBACK FAILED at step 'plan': Rolling back to {state['v3']} needs "
        "to unapply notes.0003_note_colour (RunPython cannot be reversed). Run again with "
        f"--with-db to restore the backup recorded for {state['v3']}, or pick a later "
        "release with --to." in refused.stderr
    )
    assert current(project) == data["release"]
    assert db_snapshot(db) != before

    restored = project.manage("rollback", "--env=staging", "--with-db")
    assert restored.returncode == 0, restored.stderr
    assert current(project) == state["v3"]
    assert db_snapshot(db) == before
    assert get(project.url("staging"))[:2] == (200, state["v3"])
    state["v4"] = data["release"]


def write_lock(project: Project, pid: int, since: str | None = None) -> None:
    lock = {
        "user": "alice",
        "host": socket.gethostname(),
        "pid": pid,
        "since": since or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "action": "deploy of 0123456789ab",
    }
    (project.root("staging") / ".lock").write_text(json.dumps(lock))


def test_a_held_lock_refuses_at_once(project: Project) -> None:
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


def test_a_stale_lock_is_broken_only_when_asked(project: Project, state: dict[str, Any]) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(project, gone.pid)
    code, _, stderr = project.deploy()
    assert code == 1
    assert f"CommandError: The lock is stale (pid {gone.pid} is gone): alice@" in stderr
    assert "Make sure no deploy is running, then run again with --break-lock." in stderr
    assert (project.root("staging") / ".lock").exists()

    code, data, stderr = project.deploy("staging", "--break-lock")
    assert code == 0, stderr
    broken = [e for e in history(project) if e["event"] == "lock_broken"]
    assert len(broken) == 1
    assert broken[0]["stale_lock"].startswith(f"alice@{socket.gethostname()} (pid {gone.pid})")
    assert not (project.root("staging") / ".lock").exists()
    state["v5"] = data["release"]


def test_ctrl_c_undoes_and_frees_the_lock(project: Project, state: dict[str, Any]) -> None:
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
    assert current(project) == state["v5"]
    assert state["v5"] == releases_on_disk(project)[-1]
    assert get(project.url("staging"))[:2] == (200, state["v5"])
    for new in {p.name for p in venvs.iterdir()} - known:
        assert not (venvs / new / ".django-cd-complete").exists()
    last = history(project)[-1]
    assert (last["status"], last["error"]) == ("failed", "Interrupted (Ctrl-C or SIGTERM).")


def test_sigterm_undoes_like_ctrl_c(project: Project, state: dict[str, Any]) -> None:
    before = releases_on_disk(project)
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
    process = subprocess.Popen(
        [sys.executable, str(project.repo / "sampleproject" / "manage.py"), "deploy",
         "--env=staging"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip
    try:
        lock = project.root("staging") / ".lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not lock.exists():
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)  # a cancelled CI job
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    assert "CommandError: Deploy interrupted (Ctrl-C or SIGTERM)" in stderr
    assert not (project.root("staging") / ".lock").exists()
    assert releases_on_disk(project) == before
    assert current(project) == state["v5"]
    assert get(project.url("staging"))[:2] == (200, state["v5"])


def test_old_releases_are_pruned(project: Project, state: dict[str, Any]) -> None:
    on_disk = releases_on_disk(project)
    # KEEP_RELEASES is 3: v1 and v2 went; v3 stays as the state v4's backup holds.
    assert on_disk == [state["v3"], state["v4"], state["v5"]]
    backups = sorted(p.name for p in (project.root("staging") / "shared" / "backups").iterdir())
    assert f"{state['v1']}.dump" not in backups
    assert f"{state['v4']}.dump" in backups
    # The first venv went with the releases that used it.
    assert not (project.root("staging") / "venvs" / state["venv_a"]).exists()
    assert (project.root("staging") / "venvs" / state["venv_b"]).exists()


def test_server_commands(project: Project, state: dict[str, Any]) -> None:
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
    assert get(project.url("staging"))[:2] == (200, state["v5"])


def test_rollback_needs_the_files_not_the_database(
    project: Project, state: dict[str, Any]
) -> None:
    import sqlite3

    db = project.root("staging") / "shared" / "db.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE django_cd_deployment")
    # v4 and v5 are the same commit: a code-only rollback.
    result = project.manage("rollback", "--env=staging", "--json", f"--to={state['v4']}")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "success"
    assert data["release"] == current(project) == state["v4"]
    [warning] = data["warnings"]
    assert warning.startswith("The deployment was not mirrored into the database: ")
    assert "no such table: django_cd_deployment" in warning
    assert history(project)[-1]["status"] == "success"


def test_rollback_and_server_work_from_a_broken_checkout(
    project: Project, state: dict[str, Any]
) -> None:
    # A merge left conflict markers in version.txt: the checkout's checks fail...
    version = project.repo / "sampleproject" / "notes" / "migrations" / "version.txt"
    good = version.read_text()
    version.write_text("<<<<<<< HEAD\n0002_a\n=======\n0002_b\n>>>>>>> theirs\n")
    try:
        check = project.manage("check")
        assert check.returncode == 1
        assert "django_cd.E031" in check.stderr
        # ...but stopping, listing and rolling back are not held hostage by them.
        assert project.manage("server", "status", "--env=staging").returncode == 0
        assert project.manage("releases", "--env=staging").returncode == 0
        for release in (state["v5"], state["v4"]):  # and back, as the next test expects
            result = project.manage("rollback", "--env=staging", "--json", f"--to={release}")
            assert result.returncode == 0, result.stderr
            assert get(project.url("staging"))[:2] == (200, release)
    finally:
        version.write_text(good)


def test_no_request_fails_during_a_deploy(project: Project, state: dict[str, Any]) -> None:
    """A bounded load loop runs while a code-only deploy switches and HUPs."""
    import threading

    set_title(project, "Notes board under load")
    statuses: list[tuple[int, str | None]] = []
    done = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 60
        # Paced and capped: at most 200 requests a second, 60 s, 12000 requests.
        while not done.is_set() and time.monotonic() < deadline and len(statuses) < 12000:
            try:
                status, release, _ = get(project.url("staging"))
            except OSError:
                status, release = 0, None
            statuses.append((status, release))
            time.sleep(0.005)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.3)
        code, data, stderr = project.deploy()
        time.sleep(0.3)
    finally:
        done.set()
        worker.join()
    assert code == 0, stderr
    assert len(statuses) > 20
    assert [s for s in statuses if s[0] != 200] == []
    served = {release for _, release in statuses}
    assert served == {state["v4"], data["release"]}
    assert statuses[-1][1] == data["release"]
