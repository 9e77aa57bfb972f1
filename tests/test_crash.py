"""A deploy killed outright (``kill -9``) never leaves the site broken and the tool unaware.

Real processes killed with SIGKILL in the middle of a real ``migrate``: the
migrate child dies with its parent (the database rolls its transaction back),
the journal tells ``status`` how far the deploy got, ``deploy`` and
``rollback`` refuse to go on as if nothing happened, and ``repair`` puts it
right (undoing by default, finishing with ``--forward``), recorded in history.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Deployed
from tests.pipeline_support import (
    Project,
    commit_all,
    current,
    db_snapshot,
    get,
    history,
    write_file,
)

MIGRATIONS = "sampleproject/notes/migrations"

QUICK = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "colour", models.CharField(max_length=20, default="yellow")),
    ]
"""

# Slow while the file the test names exists: the deploy is killed during it.
SLOW = """import os
import time

from django.db import migrations, models


def wait(apps, schema_editor):
    deadline = time.monotonic() + 60
    while os.path.exists(%(gate)r) and time.monotonic() < deadline:
        time.sleep(0.05)


class Migration(migrations.Migration):
    dependencies = [("notes", "0003_note_colour")]
    operations = [
        migrations.AddField("note", "size", models.IntegerField(default=1)),
        migrations.RunPython(wait, migrations.RunPython.noop),
    ]
"""


def start_deploy(project: Project, *args: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
    return subprocess.Popen(
        [sys.executable, str(project.repo / "sampleproject" / "manage.py"), "deploy",
         "--env=staging", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        start_new_session=True,
    )  # fmt: skip


def wait_for_step(project: Project, step: str, process: subprocess.Popen[str]) -> dict:
    journal = project.root("staging") / "journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists():
            data = json.loads(journal.read_text())
            if data["step"] == step:
                return data
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"the deploy never reached step {step}")


def processes_under(path: Path) -> list[str]:
    """Command lines of live ``manage.py`` processes that run code of ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # ``migrate`` runs in the release's agent (manage.py cdagent), or on its own.
        if str(path) in cmdline and "manage.py" in cmdline and state != "Z":
            found.append(cmdline)
    return found


def sqlite_applied(project: Project) -> list[str]:
    rows = db_snapshot(project.root("staging") / "shared" / "db.sqlite3")["migrations"]
    return [name for app, name in rows if app == "notes"]


def kill_during_migrate(
    staging: Deployed,
    tmp_path: Path,
    whole_group: bool,
    applied: Callable[[Project], list[str]] = sqlite_applied,
) -> dict:
    project = staging.project
    gate = tmp_path / "slow-migration"
    gate.write_text("")
    write_file(project.repo / MIGRATIONS / "0003_note_colour.py", QUICK)
    write_file(project.repo / MIGRATIONS / "0004_note_size.py", SLOW % {"gate": str(gate)})
    commit_all(project.repo, "Colour and size")
    process = start_deploy(project)
    try:
        journal = wait_for_step(project, "migrate", process)
        deadline = time.monotonic() + 60  # until 0003 is in and 0004 is running
        while time.monotonic() < deadline and "0003_note_colour" not in applied(project):
            time.sleep(0.05)
        time.sleep(0.3)
        if whole_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    deadline = time.monotonic() + 10  # the kernel delivers the parent-death signal
    while time.monotonic() < deadline and processes_under(project.root("staging")):
        time.sleep(0.05)
    assert processes_under(project.root("staging")) == []
    gate.unlink()  # a repair that finishes the migration must not wait
    return journal


@pytest.mark.parametrize("whole_group", [False, True], ids=["deploy-pid", "process-group"])
def test_kill_9_during_migrate_then_repair_undoes(
    staging: Deployed, tmp_path: Path, whole_group: bool
) -> None:
    project = staging.project
    db = project.root("staging") / "shared" / "db.sqlite3"
    before = db_snapshot(db)
    journal = kill_during_migrate(staging, tmp_path, whole_group)
    half_made = journal["release"]

    # The migrate child died with the deploy: 0004 was rolled back by SQLite, 0003 stays.
    applied = [name for app, name in db_snapshot(db)["migrations"] if app == "notes"]
    assert applied[-1] == "0003_note_colour"
    assert current(project) == staging.release
    assert (project.root("staging") / "releases" / half_made).exists()

    status = project.manage("status", "--env=staging", "--json")
    assert status.returncode == 1
    report = json.loads(status.stdout)
    assert report["current"] == staging.release
    assert report["interrupted"]["step"] == "migrate"
    assert report["interrupted"]["release"] == half_made
    assert report["interrupted"]["needs_repair"] is True
    assert report["lock"]["stale"] is True
    assert report["database"] == {
        "release": staging.release,
        "matches_current": False,
        "missing": [],
        "unknown": ["notes.0003_note_colour"],
        "error": None,
    }
    assert "manage.py repair --env=staging" in status.stderr

    # The old code is not deployed again as if nothing happened.
    code, _data, stderr = project.deploy("staging", "--break-lock")
    assert code == 1
    assert "died during step 'migrate'" in stderr
    assert "then manage.py repair --env=staging to finish or undo it." in stderr
    assert current(project) == staging.release

    repaired = project.manage("repair", "--env=staging", "--json")
    assert repaired.returncode == 0, repaired.stderr
    outcome = json.loads(repaired.stdout)
    assert [s["name"] for s in outcome["steps"]] == [
        "database",
        "switch",
        "reload",
        "smoke",
        "verify",
    ]
    assert db_snapshot(db) == before
    assert current(project) == staging.release
    assert get(project.url("staging"))[:2] == (200, staging.release)
    assert not (project.root("staging") / "releases" / half_made).exists()
    assert not (project.root("staging") / "journal").exists()
    assert not (project.root("staging") / ".lock").exists()
    events = history(project)
    assert [(e["event"], e.get("failed_step")) for e in events[-3:]] == [
        ("lock_broken", None),  # by deploy --break-lock, which then refused:
        ("deploy", "journal"),
        ("repair", None),
    ]
    assert (events[-1]["status"], events[-1]["direction"]) == ("success", "back")
    assert events[-1]["interrupted"]["step"] == "migrate"
    clean = project.manage("status", "--env=staging", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["database"]["matches_current"] is True


def test_kill_9_during_migrate_then_repair_forward_finishes(
    staging: Deployed, tmp_path: Path
) -> None:
    project = staging.project
    journal = kill_during_migrate(staging, tmp_path, whole_group=False)
    repaired = project.manage("repair", "--env=staging", "--forward")
    assert repaired.returncode == 0, repaired.stderr
    assert current(project) == journal["release"]
    assert get(project.url("staging"))[:2] == (200, journal["release"])
    db = project.root("staging") / "shared" / "db.sqlite3"
    applied = [name for app, name in db_snapshot(db)["migrations"] if app == "notes"]
    assert applied[-2:] == ["0003_note_colour", "0004_note_size"]
    manifest = json.loads(
        (project.root("staging") / "releases" / journal["release"] / "release.json").read_text()
    )
    assert manifest["status"] == "deployed"
    assert manifest["migrations"]["notes"] == "0004_note_size"
    assert history(project)[-1]["direction"] == "forward"
    # The next deploy goes through: the database matches what serves.
    code, _, stderr = project.deploy()
    assert code == 0, stderr
