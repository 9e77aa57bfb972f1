"""Faults of the engine itself, each against the real parts: a full disk, a corrupt
manifest, signals arriving mid-step, a killed deploy that changed nothing, a
database changed by hand, a release gone from the host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline import Deploy
from tests.conftest import Deployed, stop
from tests.pipeline_support import (
    Project,
    commit_all,
    current,
    db_snapshot,
    django_cd_config,
    get,
    history,
    set_title,
    write_file,
)
from tests.test_crash import QUICK, start_deploy, wait_for_step


def deploy_ok(project: Project) -> dict:
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    return data


def test_sigterm_records_the_step_that_was_running(staging: Deployed) -> None:
    project = staging.project
    set_title(project, "Cancelled")
    process = start_deploy(project)
    try:
        wait_for_step(project, "check", process)
        process.send_signal(signal.SIGTERM)  # a cancelled CI job
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stdout + stderr
    assert "CommandError: Deploy interrupted (Ctrl-C or SIGTERM)" in stderr
    last = history(project)[-1]
    assert (last["status"], last["failed_step"], last["error"]) == (
        "failed",
        "check",
        "Interrupted (Ctrl-C or SIGTERM).",
    )
    assert [p.name for p in (project.root("staging") / "releases").iterdir()] == [staging.release]
    assert not (project.root("staging") / "journal").exists()
    assert get(project.url("staging"))[:2] == (200, staging.release)


def test_a_deploy_killed_before_any_effect_is_cleaned_up_by_the_next(staging: Deployed) -> None:
    project = staging.project
    set_title(project, "Killed early")
    process = start_deploy(project)
    try:
        journal = wait_for_step(project, "collectstatic", process)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    half_made = project.root("staging") / "releases" / journal["release"]
    assert half_made.exists()

    status = project.manage("status", "--env=staging", "--json")
    assert status.returncode == 1  # the stale lock needs the operator
    report = json.loads(status.stdout)
    assert report["interrupted"]["step"] == "collectstatic"
    assert report["interrupted"]["needs_repair"] is False
    assert report["database"]["matches_current"] is True

    data = json.loads(project.manage("deploy", "--env=staging", "--json", "--break-lock").stdout)
    assert data["status"] == "success"
    assert not half_made.exists()
    events = [(e["event"], e.get("status", None)) for e in history(project)]
    assert events[-3:] == [("lock_broken", None), ("deploy", "interrupted"), ("deploy", "success")]
    cleaned = history(project)[-2]
    assert cleaned["removed_release"] == journal["release"]
    assert cleaned["failed_step"] == "collectstatic"
    assert not (project.root("staging") / "journal").exists()


def test_plain_rollback_says_when_it_skips_a_release_that_is_gone(staging: Deployed) -> None:
    project = staging.project
    set_title(project, "Second")
    second = deploy_ok(project)["release"]
    set_title(project, "Third")
    third = deploy_ok(project)["release"]
    import shutil

    shutil.rmtree(project.root("staging") / "releases" / second)
    result = project.manage("rollback", "--env=staging", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["release"] == staging.release
    assert data["warnings"] == [
        f"Release {second}, which {third} replaced, is no longer on the host; rolling back "
        f"to {staging.release}, the newest earlier release that is."
    ]
    text = project.manage("rollback", "--env=staging", f"--to={third}")
    assert text.returncode == 0, text.stderr


def test_a_corrupt_manifest_never_crashes_a_reader(staging: Deployed) -> None:
    project = staging.project
    set_title(project, "Second")
    second = deploy_ok(project)["release"]
    manifest = project.root("staging") / "releases" / staging.release / "release.json"
    manifest.write_text(manifest.read_text()[:100])  # cut short

    listing = project.manage("releases", "--env=staging", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows[staging.release]["status"] == "unreadable"
    assert rows[second]["status"] == "deployed"

    refused = project.manage("rollback", "--env=staging", f"--to={staging.release}")
    assert refused.returncode == 1
    assert (
        f"Release {staging.release} cannot be rolled back to: {manifest} cannot be read: "
        "not valid JSON" in refused.stderr
    )
    plain = project.manage("rollback", "--env=staging")
    assert plain.returncode == 1
    assert f"{manifest} cannot be read" in plain.stderr

    set_title(project, "Third")
    data = deploy_ok(project)  # pruning reads every manifest
    assert data["warnings"] == []
    assert history(project)[-1]["status"] == "success"


def test_a_database_migrated_by_hand_is_found_and_repaired(staging: Deployed) -> None:
    project = staging.project
    write_file(project.repo / "sampleproject/notes/migrations/0003_note_colour.py", QUICK)
    commit_all(project.repo, "Colour")
    second = deploy_ok(project)["release"]
    release = project.root("staging") / "releases" / second
    by_hand = subprocess.run(
        [str(release / ".venv" / "bin" / "python"), str(release / "sampleproject" / "manage.py"),
         "migrate", "notes", "0002", "--noinput"],
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "settings.staging",
             "DJANGO_ENV_FILE": str(project.root("staging") / "shared" / ".env")},
        capture_output=True, text=True, cwd=release, check=False,
    )  # fmt: skip
    assert by_hand.returncode == 0, by_hand.stderr

    status = project.manage("status", "--env=staging", "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout)["database"] == {
        "release": second,
        "matches_current": False,
        "missing": ["notes.0003_note_colour"],
        "unknown": [],
        "error": None,
    }
    for command in (("releases",), ("server", "status")):
        result = project.manage(*command, "--env=staging")
        assert result.returncode == 0
        assert result.stderr.startswith(
            f"WARNING: The database does not match release {second}, which is current: "
            "migrations it needs are not applied (notes.0003_note_colour)."
        )
    set_title(project, "Next")
    code, data, _stderr = project.deploy()
    assert code == 1
    assert data["failed_step"] == "plan"
    assert data["error"].startswith(f"The database does not match release {second}")
    assert current(project) == second
    rollback = project.manage("rollback", "--env=staging")
    assert rollback.returncode == 1
    assert "not applied: notes.0003_note_colour" in rollback.stderr

    repaired = project.manage("repair", "--env=staging", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["release"] == second
    assert project.manage("status", "--env=staging").returncode == 0
    assert history(project)[-1]["direction"] == "database"
    deploy_ok(project)


@pytest.fixture
def small_disk(tmp_path: Path, sample_venvs: Path) -> Iterator[Project]:
    """A project whose deploy root is on its own 64 MB tmpfs."""
    mount = tmp_path / "deploy"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    project = Project(tmp_path, venvs=sample_venvs)
    try:
        yield project
    finally:
        stop(project)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_step_clearly_and_leaves_nothing_half_made(
    small_disk: Project,
) -> None:
    project = small_disk
    first = deploy_ok(project)
    db = project.root("staging") / "shared" / "db.sqlite3"
    snapshot = db_snapshot(db)
    set_title(project, "No room")
    archive = subprocess.run(
        ["git", "-C", str(project.repo), "archive", "HEAD"], capture_output=True, check=True
    ).stdout
    free = (
        os.statvfs(project.root("staging")).f_bavail * os.statvfs(project.root("staging")).f_frsize
    )
    filler = project.root("staging") / "filler"
    with open(filler, "wb") as handle:  # leave room for the lock and journal, not the code
        handle.write(b"\0" * (free - len(archive) // 3))
    try:
        # The predeploy disk gate sees it first and refuses: nothing is made.
        code, refused, _ = project.deploy()
        assert code == 1
        [disk] = [g for g in refused["predeploy"]["gates"] if g["name"] == "disk"]
        assert disk["result"] == "fail"
        # The engine itself, when the disk fills after the gates looked.
        with override_settings(DJANGO_CD=django_cd_config(project)):
            outcome = Deploy(conf.get_environment("staging")).run()
    finally:
        filler.unlink()
    assert outcome.status == "failed"
    assert outcome.failed_step == "upload"
    assert outcome.error == (
        f"The disk holding {project.root('staging')} is full (ENOSPC): free space, then run again."
    )
    releases = [p.name for p in (project.root("staging") / "releases").iterdir()]
    assert releases == [first["release"]]
    assert not (project.root("staging") / ".lock").exists()
    assert not (project.root("staging") / "journal").exists()
    assert history(project)[-1]["failed_step"] == "upload"
    assert db_snapshot(db) == snapshot
    assert get(project.url("staging"))[:2] == (200, first["release"])
    deploy_ok(project)  # with room again, the same commit deploys
