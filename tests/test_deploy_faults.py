"""The fault matrix: every way a deploy can go wrong leaves the site as it was.

Each cell gets its own scratch project with a good first deploy (the
``staging`` fixture; the venv is built once per session), breaks one step
with a real commit, deploys it for real (git, pip, manage.py, gunicorn,
SQLite), and then checks over HTTP and on disk: the previous release still
serves, the database equals its pre-deploy state, the lock is free, and
history records the failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.conftest import Deployed
from tests.pipeline_support import (
    Project,
    branch_with,
    current,
    db_snapshot,
    django_cd_config,
    get,
    history,
)

VIEWS = "sampleproject/notes/views.py"
MIGRATIONS = "sampleproject/notes/migrations"

ADD_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "colour", models.CharField(max_length=20, default="yellow")),
    ]
"""

FAILING_DATA_MIGRATION = """from django.conf import settings
from django.db import migrations


def fail(apps, schema_editor):
    # A careless migration that puts a secret in its error (the last line of the
    # traceback, so it stays inside the output tail on every Python).
    raise RuntimeError("backfill failed using key " + settings.SECRET_KEY)


class Migration(migrations.Migration):
    dependencies = [("notes", "0003_note_colour")]
    operations = [migrations.RunPython(fail, migrations.RunPython.noop)]
"""


@pytest.fixture
def project(staging: Deployed) -> Iterator[Project]:
    with override_settings(DJANGO_CD=django_cd_config(staging.project)):
        yield staging.project


@pytest.fixture
def baseline(staging: Deployed, project: Project) -> dict[str, Any]:
    """The first, good deploy, and a note in its database."""
    import sqlite3

    db = project.root("staging") / "shared" / "db.sqlite3"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "INSERT INTO notes_note (title, body, author, pinned, created_at) "
            "VALUES ('Keep me', '', 'ann', 0, '2026-01-01 00:00:00')"
        )
    return {"release": staging.release, "commit": staging.first["commit"], "db": db}


def deploy_fails(project: Project, *args: str, **options: Any) -> tuple[str, str]:
    """Deploy in-process; it must raise CommandError. Returns (error, stdout)."""
    stdout = StringIO()
    with (
        override_settings(DJANGO_CD=django_cd_config(project)),
        pytest.raises(CommandError) as raised,
    ):
        call_command("deploy", *args, stdout=stdout, stderr=StringIO(), **options)
    return str(raised.value), stdout.getvalue()


def assert_unharmed(project: Project, baseline: dict[str, Any], snapshot: dict[str, Any]) -> None:
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, baseline["release"])
    assert "Keep me" in body
    assert current(project) == baseline["release"]
    assert db_snapshot(baseline["db"]) == snapshot
    assert not (project.root("staging") / ".lock").exists()
    releases = sorted(p.name for p in (project.root("staging") / "releases").iterdir())
    assert releases == [baseline["release"]]


def test_unknown_environment(project: Project, baseline: dict[str, Any]) -> None:
    before = len(history(project))
    error, _ = deploy_fails(project, env="nope")
    assert error == (
        "Unknown environment 'nope'. Known environments: staging. "
        "Define it in DJANGO_CD['ENVIRONMENTS'] or pick a known one."
    )
    assert len(history(project)) == before


def test_ref_that_does_not_exist(project: Project, baseline: dict[str, Any]) -> None:
    snapshot = db_snapshot(baseline["db"])
    error, _ = deploy_fails(project, env="staging", ref="no-such-branch")
    assert error.splitlines()[:2] == [
        "Predeploy gates failed (ref): nothing was changed.",
        f"  ref: Ref 'no-such-branch' does not exist in {project.repo}. "
        "Use a branch, tag or commit that `git rev-parse` knows (fetch first?).",
    ]
    assert_unharmed(project, baseline, snapshot)
    last = history(project)[-1]
    assert (last["status"], last["failed_step"], last["commit"]) == (
        "refused",
        "predeploy",
        None,
    )


def test_dirty_tree(project: Project, baseline: dict[str, Any]) -> None:
    snapshot = db_snapshot(baseline["db"])
    views = project.repo / VIEWS
    original = views.read_text()
    views.write_text(original + "\n# local edit\n")
    try:
        error, _ = deploy_fails(project, env="staging")
    finally:
        views.write_text(original)
    assert error.splitlines()[0] == "Predeploy gates failed (tree): nothing was changed."
    assert f"  tree: Uncommitted changes ({VIEWS}).\n    Commit or stash them" in error
    assert_unharmed(project, baseline, snapshot)
    assert history(project)[-1]["failed_step"] == "predeploy"


def test_missing_secret(project: Project, baseline: dict[str, Any]) -> None:
    snapshot = db_snapshot(baseline["db"])
    env_file = project.root("staging") / "shared" / ".env"
    original = env_file.read_text()
    env_file.write_text(
        "".join(line + "\n" for line in original.splitlines() if "SECRET_KEY" not in line)
    )
    try:
        error, _ = deploy_fails(project, env="staging")
    finally:
        env_file.write_text(original)
    # The settings gate imports the target's settings before anything is made.
    assert error.splitlines()[0].startswith("Predeploy gates failed (settings")
    assert (
        "DJANGO_SECRET_KEY is not set; it should hold a random secret of at least 50 characters."
        in error
    )
    assert_unharmed(project, baseline, snapshot)
    last = history(project)[-1]
    assert (last["status"], last["failed_step"]) == ("refused", "predeploy")


def test_requirements_that_fail_to_install(project: Project, baseline: dict[str, Any]) -> None:
    snapshot = db_snapshot(baseline["db"])
    requirements = (project.repo / "sampleproject" / "requirements.txt").read_text()
    sha = branch_with(
        project,
        "bad-requirements",
        baseline["commit"],
        {"sampleproject/requirements.txt": requirements + "./vendor/not-there\n"},
    )
    error, _ = deploy_fails(project, env="staging", ref="bad-requirements")
    assert error.startswith(
        "DEPLOY FAILED at step 'venv': Installing sampleproject/requirements.txt failed. "
        "Fix the requirements (the error is below) and deploy again."
    )
    assert "not-there" in error
    assert_unharmed(project, baseline, snapshot)
    venvs = list((project.root("staging") / "venvs").iterdir())
    assert len(venvs) == 1, "the failed venv was left behind"
    last = history(project)[-1]
    assert (last["status"], last["failed_step"], last["commit"]) == ("failed", "venv", sha)


def test_failing_migration_is_undone_and_secrets_masked(
    project: Project, baseline: dict[str, Any]
) -> None:
    snapshot = db_snapshot(baseline["db"])
    branch_with(
        project,
        "bad-migration",
        baseline["commit"],
        {
            f"{MIGRATIONS}/0003_note_colour.py": ADD_FIELD,
            f"{MIGRATIONS}/0004_backfill.py": FAILING_DATA_MIGRATION,
        },
    )
    error, stdout = deploy_fails(project, env="staging", ref="bad-migration")
    secret = project.env_file_values("staging")["DJANGO_SECRET_KEY"]
    assert error.startswith("DEPLOY FAILED at step 'migrate': migrate failed.")
    assert "RuntimeError: backfill failed using key ********" in error
    assert secret not in error and secret not in stdout
    assert "  undo database: ok migrated back to the pre-deploy state" in error
    assert_unharmed(project, baseline, snapshot)
    last = history(project)[-1]
    assert (last["status"], last["failed_step"]) == ("failed", "migrate")
    assert last["migrations"] == ["notes.0003_note_colour", "notes.0004_backfill"]
    assert last["backup"].endswith(f"{last['release']}.dump")


def test_collectstatic_failing(project: Project, baseline: dict[str, Any]) -> None:
    snapshot = db_snapshot(baseline["db"])
    css = project.repo / "sampleproject" / "notes" / "static" / "notes" / "board.css"
    branch_with(
        project,
        "bad-static",
        baseline["commit"],
        {
            str(css.relative_to(project.repo)): css.read_text()
            + 'body { background: url("gone.png"); }\n'
        },
    )
    error, _ = deploy_fails(project, env="staging", ref="bad-static")
    assert error.startswith(
        "DEPLOY FAILED at step 'collectstatic': manage.py collectstatic --noinput failed."
    )
    assert "gone.png" in error
    assert_unharmed(project, baseline, snapshot)
    assert history(project)[-1]["failed_step"] == "collectstatic"


def test_an_application_that_cannot_load_stops_before_the_switch(
    project: Project, baseline: dict[str, Any]
) -> None:
    snapshot = db_snapshot(baseline["db"])
    wsgi = project.repo / "sampleproject" / "notesboard" / "wsgi.py"
    branch_with(
        project,
        "bad-wsgi",
        baseline["commit"],
        {"sampleproject/notesboard/wsgi.py": wsgi.read_text() + '\nraise ImportError("no app")\n'},
    )
    error, _ = deploy_fails(project, env="staging", ref="bad-wsgi")
    assert error.startswith("DEPLOY FAILED at step 'serve_check': ")
    assert "ImportError: no app" in error
    assert f"Nothing was switched: {baseline['release']} is still current" in error
    assert_unharmed(project, baseline, snapshot)
    last = history(project)[-1]
    assert (last["status"], last["failed_step"], last["rollback_steps"]) == (
        "failed",
        "serve_check",
        [],
    )


def test_new_release_answering_500_with_a_migration(
    project: Project, baseline: dict[str, Any]
) -> None:
    snapshot = db_snapshot(baseline["db"])
    views = (project.repo / VIEWS).read_text()
    broken = views.replace(
        "class NoteListView(ListView):",
        "class NoteListView(ListView):\n    def get(self, request):\n        1 / 0\n",
    )
    branch_with(
        project,
        "answers-500",
        baseline["commit"],
        {VIEWS: broken, f"{MIGRATIONS}/0003_note_colour.py": ADD_FIELD},
    )
    error, _ = deploy_fails(project, env="staging", ref="answers-500")
    new_release = history(project)[-1]["release"]
    assert error.startswith(
        f"DEPLOY FAILED at step 'smoke': {project.url('staging')} answered 500 from the new "
        "release, not a 2xx or a redirect."
    )
    assert "  undo database: ok migrated back to the pre-deploy state" in error
    # The traceback the error page hides is in the app server's log, shown under it.
    assert "--- the last lines of the gunicorn log ---" in error
    assert "ZeroDivisionError: division by zero" in error
    assert_unharmed(project, baseline, snapshot)
    last = history(project)[-1]
    assert (last["status"], last["failed_step"], last["release"]) == (
        "rolled_back",
        "smoke",
        new_release,
    )
    assert [s["name"] for s in last["rollback_steps"]] == ["switch", "reload", "database", "check"]


def test_a_host_the_settings_refuse_is_named_from_the_server_log(
    project: Project, baseline: dict[str, Any]
) -> None:
    """The check gets a bare 400; why (an ``Invalid HTTP_HOST header``) is only in the
    app server's log, so the failure shows its last lines, secrets masked."""
    snapshot = db_snapshot(baseline["db"])
    values = project.env_file_values("staging")
    project.write_env_file("staging", **{**values, "DJANGO_ALLOWED_HOSTS": "example.com"})
    views = (project.repo / VIEWS).read_text()
    branch_with(project, "wrong-host", baseline["commit"], {VIEWS: views + "# a change\n"})
    try:
        error, _ = deploy_fails(project, env="staging", ref="wrong-host")
    finally:
        project.write_env_file("staging", **values)
    assert f"{project.url('staging')} answered 400 from the new release" in error
    log = error.split("--- the last lines of the gunicorn log ---", 1)[1]
    assert "Invalid HTTP_HOST header: '127.0.0.1:" in log
    assert values["DJANGO_SECRET_KEY"] not in error
    assert_unharmed(project, baseline, snapshot)


IRREVERSIBLE_MIGRATION = ADD_FIELD.replace(
    "    operations = [",
    "    operations = [\n        migrations.RunPython(lambda apps, schema_editor: None),",
)


def test_irreversible_migration_then_500_restores_the_backup(
    project: Project, baseline: dict[str, Any]
) -> None:
    snapshot = db_snapshot(baseline["db"])
    views = (project.repo / VIEWS).read_text()
    broken = views.replace(
        "class NoteListView(ListView):",
        "class NoteListView(ListView):\n    def get(self, request):\n        1 / 0\n",
    )
    branch_with(
        project,
        "irreversible-500",
        baseline["commit"],
        {VIEWS: broken, f"{MIGRATIONS}/0003_note_colour.py": IRREVERSIBLE_MIGRATION},
    )
    error, _ = deploy_fails(project, env="staging", ref="irreversible-500")
    release = history(project)[-1]["release"]
    assert error.startswith("DEPLOY FAILED at step 'smoke': ")
    assert f"  undo database: ok restored {release}.dump" in error
    assert_unharmed(project, baseline, snapshot)
    last = history(project)[-1]
    assert (last["status"], last["failed_step"], last["backup"]) == (
        "rolled_back",
        "smoke",
        str(project.root("staging") / "shared" / "backups" / f"{release}.dump"),
    )


def test_history_is_mirrored_in_the_database(project: Project, baseline: dict[str, Any]) -> None:
    import sqlite3

    deploy_fails(project, env="staging", ref="no-such-branch")
    css = project.repo / "sampleproject" / "notes" / "static" / "notes" / "board.css"
    branch_with(
        project,
        "bad-static",
        baseline["commit"],
        {str(css.relative_to(project.repo)): css.read_text() + 'body { background: url("x"); }'},
    )
    deploy_fails(project, env="staging", ref="bad-static")
    with sqlite3.connect(baseline["db"]) as connection:
        rows = connection.execute(
            "SELECT action, status, failed_step FROM django_cd_deployment ORDER BY id"
        ).fetchall()
    # A refusal before a release exists is in the files only.
    assert rows == [("deploy", "success", ""), ("deploy", "failed", "collectstatic")]
    assert [e["failed_step"] for e in history(project)] == [None, "predeploy", "collectstatic"]


def test_rollback_migrates_back_when_every_migration_is_reversible(
    project: Project, baseline: dict[str, Any]
) -> None:
    snapshot = db_snapshot(baseline["db"])
    branch_with(
        project, "reversible", baseline["commit"], {f"{MIGRATIONS}/0003_note_colour.py": ADD_FIELD}
    )
    out = StringIO()
    with override_settings(DJANGO_CD=django_cd_config(project)):
        call_command("deploy", env="staging", ref="reversible", stdout=out, stderr=StringIO())
        deployed = current(project)
        assert db_snapshot(baseline["db"]) != snapshot
        out = StringIO()
        call_command("rollback", env="staging", stdout=out, stderr=StringIO())
    lines = [line.split() for line in out.getvalue().splitlines()]
    assert [words[:2] for words in lines[:5]] == [
        ["plan", "ok"],
        ["database", "ok"],
        ["switch", "ok"],
        ["reload", "ok"],
        ["smoke", "ok"],
    ]
    assert lines[0][3:] == [
        "database", "matches", f"{deployed};", "1", "migration(s)", "to", "unapply",
    ]  # fmt: skip
    assert lines[1][3:] == ["database", "at", "the", "state", "of", baseline["release"]]
    assert db_snapshot(baseline["db"]) == snapshot
    assert current(project) == baseline["release"]
    assert get(project.url("staging"))[:2] == (200, baseline["release"])
    last = history(project)[-1]
    assert (last["event"], last["status"], last["previous"]) == ("rollback", "success", deployed)
