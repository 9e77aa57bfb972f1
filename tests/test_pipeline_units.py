"""The engine's parts on their own: lock, masking, venv hashes, pruning, the
release header, the Deployment mirror, checks and command refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.sites import AdminSite
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from django_cd import conf
from django_cd.admin import DeploymentAdmin
from django_cd.checks import check_settings
from django_cd.middleware import ReleaseHeaderMiddleware, release_id
from django_cd.models import Deployment
from django_cd.pipeline import LocalHost, Lock, LockHeld, PipelineError, StepFailed, Target
from django_cd.pipeline.layout import Layout, new_release_id
from django_cd.pipeline.prune import protected
from django_cd.pipeline.release import Release
from django_cd.pipeline.secrets import MASK, mask, secret_values
from django_cd.pipeline.server import server_for
from django_cd.pipeline.venv import requirements_hash

HOST = LocalHost()


def environment(root: Path, **fields: Any) -> conf.Environment:
    definition = {"settings": "settings.staging", "root": str(root), **fields}
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": definition}}):
        return conf.get_environment("staging")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# Lock ---------------------------------------------------------------------


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path: Path) -> None:
    path = str(tmp_path / ".lock")
    with Lock(HOST, path, action="deploy of abc", timeout=60) as first:
        held = json.loads(Path(path).read_text())
        assert (held["pid"], held["host"], held["action"]) == (
            os.getpid(),
            socket.gethostname(),
            "deploy of abc",
        )
        with pytest.raises(LockHeld) as raised:
            Lock(HOST, path, action="rollback", timeout=60).acquire()
        assert str(raised.value) == (
            f"Another deploy holds the lock: {first.info.describe()}. "
            "Wait for it to finish, then run again."
        )
    assert not Path(path).exists()


def test_lock_is_released_on_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with pytest.raises(KeyboardInterrupt), Lock(HOST, str(path), action="deploy", timeout=60):
        assert path.exists()
        raise KeyboardInterrupt
    assert not path.exists()


def test_stale_lock_of_a_dead_process(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    pid = dead_pid()
    stale = {"user": "bob", "host": HOST.name, "pid": pid, "since": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps({**stale, "action": "deploy of 123"}))
    with pytest.raises(LockHeld) as raised:
        Lock(HOST, str(path), action="deploy", timeout=10**9).acquire()
    assert str(raised.value) == (
        f"The lock is stale (pid {pid} is gone): bob@{HOST.name} (pid {pid}) since "
        "2026-01-01T00:00:00+00:00 for deploy of 123. Make sure no deploy is running, "
        "then run again with --break-lock."
    )
    lock = Lock(HOST, str(path), action="deploy", timeout=10**9, break_stale=True)
    lock.acquire()
    assert (
        lock.broken
        == f"bob@{HOST.name} (pid {pid}) since 2026-01-01T00:00:00+00:00 for deploy of 123"
    )
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_lock_past_its_timeout_and_unreadable_lock(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    other = {"user": "c", "host": "elsewhere", "pid": 1, "since": "2020-01-01T00:00:00+00:00"}
    path.write_text(json.dumps({**other, "action": "deploy"}))
    with pytest.raises(LockHeld, match=r"older than LOCK_TIMEOUT \(60 s\)"):
        Lock(HOST, str(path), action="deploy", timeout=60).acquire()
    path.write_text("not json")
    with pytest.raises(LockHeld, match=r"^The lock is stale \(the lock file cannot be read\)"):
        Lock(HOST, str(path), action="deploy", timeout=60).acquire()


def test_a_lock_whose_heartbeat_stopped_is_taken_over(tmp_path: Path) -> None:
    # Its holder died on another machine, where no one can check its pid.
    path = tmp_path / ".lock"
    beat = (datetime.now(UTC) - timedelta(seconds=90)).isoformat(timespec="seconds")
    other = {"user": "c", "host": "laptop", "pid": 1, "since": beat, "heartbeat": beat}
    path.write_text(json.dumps({**other, "action": "deploy"}))
    with pytest.raises(LockHeld, match="Another deploy holds the lock: c@laptop"):
        Lock(HOST, str(path), action="deploy", timeout=3600, expiry=120).acquire()
    lock = Lock(HOST, str(path), action="deploy", timeout=3600, expiry=60)
    lock.acquire()
    try:
        assert lock.expired is not None
        assert lock.expired.startswith("c@laptop (pid 1)")
        assert "its heartbeat stopped 9" in lock.expired and "(LOCK_EXPIRY 60 s)" in lock.expired
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert not path.exists()


def test_the_holder_keeps_its_heartbeat_fresh(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    lock = Lock(HOST, str(path), action="deploy", timeout=3600, expiry=3)  # beats every 0.5 s
    lock.acquire()
    try:
        first = json.loads(path.read_text())["heartbeat"]
        deadline = time.monotonic() + 10
        while json.loads(path.read_text())["heartbeat"] == first:
            assert time.monotonic() < deadline, "the heartbeat was never refreshed"
            time.sleep(0.1)
        # A second deployer waiting past the expiry still finds it held.
        time.sleep(3.5)
        with pytest.raises(LockHeld, match="Another deploy holds the lock"):
            Lock(HOST, str(path), action="deploy", timeout=3600, expiry=3).acquire()
    finally:
        lock.release()


# Secrets -------------------------------------------------------------------


def test_secrets_are_masked_but_plain_options_are_not() -> None:
    variables = {
        "DJANGO_SECRET_KEY": "k" * 50,
        "DATABASE_URL": "postgres://app:s3cr3t-pw@127.0.0.1:5432/app",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_TOKEN": "abc",  # too short to mask safely
    }
    values = secret_values(variables)
    # Longest first, so a value containing another is masked whole.
    assert values == sorted(values, key=len, reverse=True)
    assert {"k" * 50, variables["DATABASE_URL"], "app:s3cr3t-pw", "s3cr3t-pw"} <= set(values)
    assert not {"abc", "127.0.0.1,localhost"} & set(values)
    text = f"key={'k' * 50} db={variables['DATABASE_URL']} hosts=127.0.0.1 other=redis://u:pw2@h/"
    assert mask(text, values) == f"key={MASK} db={MASK} hosts=127.0.0.1 other=redis://u:{MASK}@h/"


# Releases and venvs --------------------------------------------------------


def test_release_ids_sort_by_time_and_never_repeat() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 21, 23, 45, 0, tzinfo=UTC)
    first = new_release_id("abcdef0123", [], moment)
    assert first == "20261121T234500Z-abcdef0"
    assert new_release_id("abcdef0123", [first], moment) == f"{first}.2"


def make_release(root: Path, release: str, files: dict[str, str], **fields: Any) -> Release:
    env = environment(root, **fields)
    for name, content in files.items():
        path = root / "releases" / release / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return Release(env, HOST, Layout(str(root)), release)


def test_requirements_hash_covers_includes_and_local_paths(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "-r base.txt\n./vendor/pkg  # local\nDjango>=5.2\n",
        "base.txt": "gunicorn\n",
        "vendor/pkg/setup.py": "v1",
    }
    one = requirements_hash(make_release(tmp_path, "r1", files))
    assert one == requirements_hash(make_release(tmp_path, "r2", files))
    changed_local = requirements_hash(
        make_release(tmp_path, "r3", {**files, "vendor/pkg/setup.py": "v2"})
    )
    changed_include = requirements_hash(
        make_release(tmp_path, "r4", {**files, "base.txt": "gunicorn==23\n"})
    )
    assert len({one, changed_local, changed_include}) == 3


def test_editable_local_path_gets_a_venv_per_release(tmp_path: Path) -> None:
    files = {"requirements.txt": "-e ./vendor/pkg\n", "vendor/pkg/setup.py": "v1"}
    first = requirements_hash(make_release(tmp_path, "r1", files))
    assert first != requirements_hash(make_release(tmp_path, "r2", files))


def test_missing_requirements_file_is_a_clear_step_failure(tmp_path: Path) -> None:
    release = make_release(tmp_path, "r1", {"other.txt": ""})
    with pytest.raises(StepFailed) as raised:
        requirements_hash(release)
    assert str(raised.value) == (
        "The requirements file requirements.txt is not in the release. Fix the environment's "
        "'requirements' field or commit the file."
    )


def manifest(root: Path, release: str, **data: Any) -> None:
    directory = root / "releases" / release
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "release.json").write_text(
        json.dumps({"id": release, "status": "deployed", **data})
    )


def test_pruning_keeps_current_previous_and_what_a_backup_needs(tmp_path: Path) -> None:
    backup = tmp_path / "shared" / "backups" / "r5.dump"
    backup.parent.mkdir(parents=True)
    backup.write_text("dump")
    for name in ("r1", "r2", "r3", "r4"):
        manifest(tmp_path, name)
    manifest(tmp_path, "r5", backup={"path": str(backup), "state_of": "r2"})
    manifest(tmp_path, "r6", previous="r1")
    (tmp_path / "current").symlink_to("releases/r6")
    with override_settings(
        DJANGO_CD={
            "KEEP_RELEASES": 2,
            "ENVIRONMENTS": {"staging": {"settings": "s.staging", "root": str(tmp_path)}},
        }
    ):
        target = Target(conf.get_environment("staging"))
        assert protected(target) == {"r5", "r6", "r1", "r2"}
        # Releases that killed deploys left half-made never take a KEEP_RELEASES slot.
        manifest(tmp_path, "r7", status="preparing")
        (tmp_path / "releases" / "r8").mkdir()  # killed before its manifest was written
        assert protected(target) == {"r5", "r6", "r1", "r2"}


# The release header and the Deployment mirror -------------------------------


def test_release_header_names_the_serving_release(tmp_path: Path) -> None:
    project = tmp_path / "sampleproject"
    project.mkdir()
    (tmp_path / "release.json").write_text(json.dumps({"id": "20261121T000000Z-abc"}))
    middleware = ReleaseHeaderMiddleware(lambda request: HttpResponse())
    release_id.cache_clear()
    try:
        with override_settings(BASE_DIR=project):
            response = middleware(RequestFactory().get("/"))
            assert response["X-Release"] == "20261121T000000Z-abc"
        release_id.cache_clear()
        (tmp_path / "release.json").unlink()
        with override_settings(BASE_DIR=project):
            assert "X-Release" not in middleware(RequestFactory().get("/"))
    finally:
        release_id.cache_clear()


@pytest.mark.django_db
def test_record_deployment_mirrors_a_history_entry(tmp_path: Path) -> None:
    entry = {
        "event": "rollback",
        "env": "live",
        "status": "success",
        "release": "20261121T000000Z-abc",
        "commit": "a" * 40,
        "previous": "20261121T010000Z-def",
        "at": "2026-11-21T01:02:03+00:00",
        "by": {"user": "deploy", "git": "Dee <dee@example.com>"},
    }
    source = tmp_path / "entry.json"
    source.write_text(json.dumps(entry))
    out = StringIO()
    call_command("record_deployment", file=str(source), stdout=out)
    row = Deployment.objects.get()
    assert out.getvalue() == f"Recorded deployment {row.pk}.\n"
    assert (row.environment, row.action, row.status, row.deployed_by) == (
        "live",
        "rollback",
        "success",
        "deploy (Dee <dee@example.com>)",
    )
    assert row.at.isoformat() == "2026-11-21T01:02:03+00:00"
    assert str(row) == "rollback 20261121T000000Z-abc to live: success"
    source.write_text("{not json")
    with pytest.raises(CommandError, match=r"^The history entry is not valid JSON: "):
        call_command("record_deployment", file=str(source))


@pytest.mark.django_db
def test_record_deployment_catches_up_on_the_history_file(tmp_path: Path) -> None:
    def entry(event: str, release: str, at: str, env: str = "live") -> dict[str, object]:
        return {"event": event, "env": env, "status": "success", "release": release,
                "at": at, "by": {"user": "deploy"}}  # fmt: skip

    history_file = tmp_path / "history.jsonl"
    lines = [
        entry("deploy", "r1", "2026-11-21T01:00:00+00:00"),
        {"event": "lock_broken", "env": "live", "at": "2026-11-21T01:30:00+00:00"},
        entry("deploy", "r9", "2026-11-21T01:40:00+00:00", env="staging"),
        {**entry("deploy", "r2", "2026-11-21T01:50:00+00:00"), "status": "refused"},
        entry("rollback", "r0", "2026-11-21T02:00:00+00:00"),
    ]
    history_file.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{cut short\n")
    # The first entry was mirrored when it was made; the rollback's mirror was lost.
    call_command("record_deployment", file=str(_entry_file(tmp_path, lines[0])))
    out = StringIO()
    call_command("record_deployment", history=str(history_file), env="live", stdout=out)
    assert out.getvalue() == "Recorded 1 deployment(s).\n"
    rows = list(Deployment.objects.order_by("at").values_list("action", "release"))
    assert rows == [("deploy", "r1"), ("rollback", "r0")]
    # Again: nothing is recorded twice.
    call_command("record_deployment", history=str(history_file), env="live", stdout=out)
    assert Deployment.objects.count() == 2
    with pytest.raises(CommandError, match=r"^--history needs --env NAME\.$"):
        call_command("record_deployment", history=str(history_file))


def _entry_file(directory: Path, entry: dict[str, object]) -> Path:
    path = directory / "entry.json"
    path.write_text(json.dumps(entry))
    return path


def test_deployments_are_read_only_in_the_admin() -> None:
    admin = DeploymentAdmin(Deployment, AdminSite())
    request = RequestFactory().get("/")
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request)
    assert not admin.has_delete_permission(request)
    assert admin.get_readonly_fields(request) == [f.name for f in Deployment._meta.fields]


# Checks and refusals ----------------------------------------------------------


def check_ids(config: dict[str, Any]) -> list[str]:
    with override_settings(DJANGO_CD=config):
        return [message.id for message in check_settings()]


def test_deploy_checks() -> None:
    env = {"settings": "settings.staging", "root": "/srv/app/staging"}
    assert check_ids({"LOCK_TIMEOUT": 0}) == ["django_cd.E050"]
    assert (
        check_ids({"LOCK_EXPIRY": 0.5}) == check_ids({"LOCK_EXPIRY": "60"}) == ["django_cd.E065"]
    )
    assert check_ids({"ENVIRONMENTS": {"s": {**env, "allow_dirty": "no"}}}) == ["django_cd.E051"]
    good = {**env, "server": {"type": "gunicorn", "wsgi": "app.wsgi", "bind": "127.0.0.1:8000"}}
    assert check_ids({"ENVIRONMENTS": {"s": good}, "LOCK_TIMEOUT": 600}) == []


def test_unknown_environment_is_a_command_error() -> None:
    for command in ("deploy", "rollback", "releases"):
        with pytest.raises(CommandError) as raised:
            call_command(command, env="nope")
        assert str(raised.value).startswith("Unknown environment 'nope'. Known environments: ")


def test_nothing_to_roll_back(tmp_path: Path) -> None:
    config = {"ENVIRONMENTS": {"staging": {"settings": "s.staging", "root": str(tmp_path)}}}
    with override_settings(DJANGO_CD=config):
        with pytest.raises(CommandError) as raised:
            call_command("rollback", env="staging")
        assert str(raised.value) == "Nothing is deployed to 'staging' yet: nothing to roll back."
        manifest(tmp_path, "r1", status="deployed")
        (tmp_path / "current").symlink_to("releases/r1")
        with pytest.raises(CommandError) as raised:
            call_command("rollback", env="staging", to="r9")
        assert str(raised.value) == (
            "Release 'r9' is not on the host. Known releases: r1 "
            "(see manage.py releases --env=staging)."
        )
        with pytest.raises(CommandError) as raised:
            call_command("rollback", env="staging")
        assert str(raised.value) == (
            "There is no earlier deployed release of 'staging' to roll back to."
        )
        out = StringIO()
        call_command("releases", env="staging", stdout=out)
        assert out.getvalue().startswith("* r1 ")
    assert not (tmp_path / ".lock").exists()


def test_server_types(tmp_path: Path) -> None:
    none = server_for(environment(tmp_path), HOST, Layout(str(tmp_path)))
    assert none.status().detail == "not managed (server type none)"
    env = environment(tmp_path, server={"type": "command", "reload": "false", "stop": "true"})
    command = server_for(env, HOST, Layout(str(tmp_path)))
    assert command.stop() == "ran 'true'"
    release = Release(env, HOST, Layout(str(tmp_path)), "r1")
    with pytest.raises(StepFailed, match=r"^The server's reload command failed \(exit 1\)\.$"):
        command.reload(release)
    out = StringIO()
    with override_settings(
        DJANGO_CD={"ENVIRONMENTS": {"staging": {"settings": "s.x", "root": str(tmp_path)}}}
    ):
        call_command("server", "status", env="staging", stdout=out)
        assert out.getvalue() == "staging: not managed (server type none)\n"
        with pytest.raises(CommandError, match=r"^Nothing is deployed to 'staging' yet"):
            call_command("server", "start", env="staging")


def test_not_a_git_repository(tmp_path: Path) -> None:
    from django_cd.pipeline.gitrepo import Repository

    with pytest.raises(PipelineError) as raised:
        Repository.find(str(tmp_path), None)
    assert str(raised.value) == (
        f"{tmp_path} is not inside a git repository. Deploys are made from git commits: "
        "set DJANGO_CD['REPOSITORY'] to your checkout."
    )


def test_allow_dirty_is_refused_where_the_environment_says_so(tmp_path: Path) -> None:
    from django_cd.pipeline import Deploy
    from django_cd.pipeline.gitrepo import Repository

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "a@b"], ["config", "user.name", "A"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    (repo / "app.py").write_text("v1\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "v1"], check=True)
    (repo / "app.py").write_text("v2\n")
    live = environment(tmp_path / "live", allow_dirty=False)
    deploy = Deploy(live, allow_dirty=True, repository=Repository(repo))
    with pytest.raises(PipelineError) as raised:
        deploy.resolve()
    assert str(raised.value) == (
        "Environment 'staging' refuses --allow-dirty (allow_dirty is False): "
        "deploy from a clean checkout."
    )
    staging = environment(tmp_path / "staging")
    commit = Deploy(staging, allow_dirty=True, repository=Repository(repo)).resolve()
    assert len(commit) == 40
    with pytest.raises(PipelineError, match=r"has uncommitted changes \(app.py\)"):
        Deploy(staging, repository=Repository(repo)).resolve()


def test_an_unreachable_ssh_host_is_named_by_every_command(tmp_path: Path) -> None:
    env = environment(tmp_path, hosts=["deploy@127.0.0.1:1"])
    with pytest.raises(PipelineError, match=r"lists SSH hosts, so it has no target"):
        Target(env)
    definition = {"settings": "s.x", "root": str(tmp_path), "hosts": ["deploy@127.0.0.1:1"]}
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": definition}}):
        for args in (("rollback",), ("releases",), ("server", "status")):
            with pytest.raises(CommandError, match=r"127\.0\.0\.1:1") as raised:
                call_command(*args, env="staging")
            assert "Traceback" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_a_journal_left_by_a_command_that_gave_up_is_not_a_running_one(tmp_path: Path) -> None:
    from django_cd.pipeline import journal

    layout = Layout(str(tmp_path))
    opened = journal.Journal.begin(HOST, layout, action="deploy", release="r2", previous="r1")
    opened.intend("switch")
    # Written by this very (live) process: a command still at work.
    assert journal.interrupted(HOST, layout) is None
    opened.leave(undo_failed=True)
    # Same live pid, but the command has given up: status and repair must see it.
    left = journal.interrupted(HOST, layout)
    assert left is not None and left.step == "undo" and journal.needs_repair(left)
    assert "with work left for repair" in left.describe()


def test_a_django_process_does_not_load_the_deploy_engine() -> None:
    # Every process of a project with django_cd installed (each app-server worker,
    # each agent) runs its system checks' imports; the engine is not among them.
    loaded = subprocess.run(
        [sys.executable, "-c",
         "import sys, django; django.setup(); import django_cd.gates.checks, "
         "django_cd.pipeline.history; print(' '.join(sorted(sys.modules)))"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "django_cd.pipeline.history" in loaded
    for engine in (
        "django_cd.pipeline.deploy",
        "django_cd.pipeline.rollback",
        "django_cd.gates.run",
    ):
        assert engine not in loaded


def test_the_engine_names_are_imported_when_used() -> None:
    import django_cd.gates
    import django_cd.pipeline
    from django_cd.gates import run
    from django_cd.pipeline import deploy, errors, rollback

    assert django_cd.pipeline.Deploy is deploy.Deploy
    assert django_cd.pipeline.Rollback is rollback.Rollback
    assert django_cd.pipeline.LockHeld is errors.LockHeld
    assert django_cd.gates.evaluate is run.evaluate
    assert all(getattr(django_cd.pipeline, name) for name in django_cd.pipeline.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Deployer'"):
        django_cd.pipeline.Deployer  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'evaluated'"):
        django_cd.gates.evaluated  # noqa: B018
