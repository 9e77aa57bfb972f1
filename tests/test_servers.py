"""The managed gunicorn, for real: the pre-switch serve check, two environments side by
side on one host, an exclusive bind, every URL smoked, and daemons that outlive the
process that launched them.

One scratch project with two environments (``staging`` and ``other``), each
deployed once by the module fixture; every test starts from "both serve" and
leaves them serving.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline import smoke
from django_cd.pipeline.deploy import Deploy
from django_cd.pipeline.errors import StepFailed
from tests.pipeline_support import (
    Project,
    branch_with,
    current,
    django_cd_config,
    get,
    git,
    history,
    set_title,
)
from tests.servers_support import (
    get_or_none,
    master_pid,
    relaunch_with_parent_death_signal,
    rollback,
)

WSGI = "sampleproject/notesboard/wsgi.py"
FOREIGN_APP = """\
def application(environ, start_response):
    start_response("200 OK", [("X-Release", "another-project")])
    return [b"another project"]
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME and XDG_RUNTIME_DIR of every command: where a default control socket goes."""
    path = tmp_path_factory.mktemp("home")
    (path / "run").mkdir()
    return path


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, home: Path, sample_venvs: Path
) -> Iterator[Project]:
    project = Project(
        tmp_path_factory.mktemp("servers"), envs=("staging", "other"), venvs=sample_venvs
    )
    try:
        for env in project.ports:
            code, _, stderr = deploy(project, home, env)
            assert code == 0, stderr
        yield project
    finally:
        project.stop_servers()


def user_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run")}


def deploy(project: Project, home: Path, env: str, *args: str) -> tuple[int, dict[str, Any], str]:
    import json

    result = project.manage("deploy", f"--env={env}", "--json", *args, env=user_env(home))
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.returncode, data, result.stderr


def foreign_gunicorn(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    """Another project's gunicorn (from the test's own venv) on 127.0.0.1:port."""
    (tmp_path / "foreign_app.py").write_text(FOREIGN_APP)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    return subprocess.Popen(
        [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--no-control-socket", *args,
         "foreign_app:application"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_release_that_cannot_import_its_app_stops_before_the_switch(
    project: Project, home: Path
) -> None:
    serving, pid = current(project), master_pid(project)
    wsgi = (project.repo / WSGI).read_text()
    base = git(project.repo, "rev-parse", "main").strip()
    branch_with(project, "wsgi-raises", base, {WSGI: wsgi + '\nraise RuntimeError("no app")\n'})
    code, data, _ = deploy(project, home, "staging", "--ref=wsgi-raises")
    assert code == 1
    assert (data["status"], data["failed_step"]) == ("failed", "serve_check")
    assert "cannot serve: importing its application (notesboard.wsgi)" in data["error"]
    assert "RuntimeError: no app" in data["error_output"]
    names = [s["name"] for s in data["steps"]]
    assert names[-1] == "serve_check" and "switch" not in names and "migrate" not in names
    assert current(project) == serving
    assert master_pid(project) == pid
    assert get(project.url("staging"))[:2] == (200, serving)
    assert not (project.root("staging") / "releases" / data["release"]).exists()
    assert history(project)[-1]["failed_step"] == "serve_check"


def test_two_environments_side_by_side(project: Project, home: Path) -> None:
    other, other_pid = current(project, "other"), master_pid(project, "other")
    set_title(project, "Notes board, side by side")
    code, data, stderr = deploy(project, home, "staging")
    assert code == 0, stderr
    # Reloading staging never touched the other environment's master or release.
    assert master_pid(project, "other") == other_pid
    assert get(project.url("other"))[:2] == (200, other)
    assert get(project.url("staging"))[:2] == (200, data["release"])
    # No gunicorn of either put a control socket where every gunicorn of the user would.
    for env in ("staging", "other"):
        cmdline = Path(f"/proc/{master_pid(project, env)}/cmdline").read_text().split("\0")
        assert "--no-control-socket" in cmdline
    assert not (home / ".gunicorn").exists()
    assert not (home / "run" / "gunicorn.ctl").exists()


def test_another_server_cannot_share_the_address(project: Project, tmp_path: Path) -> None:
    serving = current(project)
    port = project.ports["staging"]
    # A plain bind: the other project's gunicorn gives up and exits.
    plain = foreign_gunicorn(tmp_path, port)
    try:
        _, stderr = plain.communicate(timeout=60)
    finally:
        plain.kill()
    assert plain.returncode != 0
    assert b"Connection in use" in stderr
    # With --reuse-port its workers cannot join our socket either: they never serve.
    sharing = foreign_gunicorn(tmp_path, port, "--reuse-port")
    try:
        assert sharing.stderr is not None
        log = b""
        deadline = time.monotonic() + 30
        while b"Address already in use" not in log and time.monotonic() < deadline:
            log += sharing.stderr.readline()
        assert b"Address already in use" in log
        assert [get(project.url("staging"))[:2] for _ in range(20)] == [(200, serving)] * 20
    finally:
        sharing.terminate()
        sharing.wait(timeout=60)


def test_a_taken_address_is_named_not_smoke_checked(
    project: Project, home: Path, tmp_path: Path
) -> None:
    serving = current(project, "other")
    assert project.manage("server", "stop", "--env=other").returncode == 0
    intruder = foreign_gunicorn(tmp_path, project.ports["other"])
    try:
        deadline = time.monotonic() + 30
        while get_or_none(project.url("other")) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        set_title(project, "Notes board, taken address")
        # The predeploy gates refuse at once, naming the process, before any change.
        result = project.manage("deploy", "--env=other", env=user_env(home))
        assert result.returncode == 1
        taken = f"The address 127.0.0.1:{project.ports['other']} is taken by another process"
        assert taken in result.stdout + result.stderr
        assert f"held by pid {intruder.pid}: " in result.stdout + result.stderr
        assert history(project, "other")[-1]["status"] == "refused"
        assert not (project.root("other") / "journal").exists()
        # Taken between the gates and the reload (the engine alone): undone, and named.
        with (
            override_settings(DJANGO_CD=django_cd_config(project)),
            pytest.MonkeyPatch.context() as patch,
        ):
            for name, value in user_env(home).items():
                patch.setenv(name, value)
            outcome = Deploy(conf.get_environment("other")).run()
        assert outcome.failed_step == "reload"
        assert outcome.error is not None and outcome.error.startswith(taken)
        assert current(project, "other") == serving
        assert get(project.url("other"))[1] == "another-project"
    finally:
        intruder.terminate()  # graceful: its worker lets go of the address too
        intruder.wait(timeout=60)
    deadline = time.monotonic() + 30
    while get_or_none(project.url("other")) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    # The automatic rollback could not restart the old release on the taken address
    # either: the journal says so, and repair finishes the job once the address is free.
    status = project.manage("status", "--env=other", "--json", "--no-database")
    assert json.loads(status.stdout)["interrupted"]["step"] == "undo"
    result = project.manage("repair", "--env=other", env=user_env(home))
    assert result.returncode == 0, result.stderr
    assert get(project.url("other"))[:2] == (200, serving)
    assert not (project.root("other") / "journal").exists()


def test_every_url_is_probed(project: Project) -> None:
    serving = current(project)
    assert serving is not None
    base = project.url("staging")
    with override_settings(DJANGO_CD=django_cd_config(project)):
        env = conf.get_environment("staging")
    good = dataclasses.replace(env, urls=(base, base + "?page=1"))
    detail = smoke.check_release(good, base, serving, timeout=10)
    assert detail == (
        f"{base} -> 200; {base}?page=1 -> 200 from {serving}; "
        f"2/2 smoke checks passed against {base}"
    )
    bad = dataclasses.replace(env, urls=(base, base + "no-such-page/"))
    with pytest.raises(StepFailed) as failed:
        smoke.check_release(bad, base, serving, timeout=5)
    assert str(failed.value) == (
        f"{base}no-such-page/ answered 404 from the new release, not a 2xx or a redirect."
    )


def test_a_deploy_fails_when_any_url_fails(project: Project) -> None:
    serving = current(project)
    config = django_cd_config(project)
    base = project.url("staging")
    config["ENVIRONMENTS"]["staging"]["urls"] = [base, base + "no-such-page/"]
    set_title(project, "Notes board, two URLs")
    with override_settings(DJANGO_CD=config), pytest.raises(CommandError) as failed:
        call_command("deploy", env="staging", stdout=StringIO(), stderr=StringIO())
    assert f"{base}no-such-page/ answered 404" in str(failed.value)
    assert history(project)[-1]["failed_step"] == "smoke"
    assert current(project) == serving
    assert get(base)[:2] == (200, serving)


def test_the_daemon_outlives_a_launcher_that_dies_with_its_parent(
    project: Project, home: Path
) -> None:
    """A parent-death signal on the process that launches ``gunicorn --daemon`` does not
    reach the daemon: it forks twice, and fork clears the signal."""
    serving = current(project, "other")
    relaunch_with_parent_death_signal(project, "other", serving)
    result = project.manage("server", "start", "--env=other", env=user_env(home))
    assert result.returncode == 0, result.stderr
    assert get(project.url("other"))[:2] == (200, serving)


NOT_NULL_COLUMN = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "colour", models.CharField(max_length=20, default="red")),
    ]
"""


def test_a_rollback_that_must_migrate_first_says_what_fails(project: Project, home: Path) -> None:
    """A NOT NULL column without a database default: the old code's inserts would fail
    on the newer schema, so the database goes back first, and the output says so."""
    serving = current(project)
    base = git(project.repo, "rev-parse", "main").strip()
    branch_with(
        project,
        "not-null-colour",
        base,
        {"sampleproject/notes/migrations/0003_note_colour.py": NOT_NULL_COLUMN},
    )
    code, data, stderr = deploy(project, home, "staging", "--ref=not-null-colour")
    assert code == 0, stderr
    assert data["migrations"] == ["notes.0003_note_colour"]
    code, back, stderr = rollback(project)
    assert code == 0, stderr
    assert back["release"] == serving
    assert [s["name"] for s in back["steps"]] == ["plan", "database", "switch", "reload", "smoke"]
    assert back["steps"][0]["detail"] == (
        f"database matches {data['release']}; 1 migration(s) to unapply"
    )
    assert back["warnings"] == [
        "The database was migrated back before the old release served: from the start of "
        "the database step until the reload (see their times), requests of the newer "
        "release that use what was removed failed: notes.0003_note_colour: Add field colour "
        "to note (a NOT NULL column without a database default: the old code's inserts fail)."
    ]
    assert get(project.url("staging"))[:2] == (200, serving)
