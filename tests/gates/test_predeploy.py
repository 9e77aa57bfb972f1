"""``manage.py predeploy`` on a real scratch sample project: each gate failing and passing.

Each run is a real ``manage.py`` process; the target gates run the commit in a
scratch copy with the environment's settings and ``shared/.env``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.gates.support import GatedProject
from tests.pipeline_support import commit_all, free_port, git, write_file

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DISK_RE = re.compile(r"\d+ MiB free at (\S+); about [\d.]+ MiB needed\.")


def disk(message: str) -> str:
    """The disk gate's message with the numbers that vary taken out."""
    return DISK_RE.sub(r"N MiB free at \1; about N MiB needed.", message)


def row(stdout: str, gate: str) -> tuple[str, str]:
    """(result, message) of ``gate`` in the printed table."""
    for line in stdout.splitlines():
        match = re.match(rf"^  {gate} +(ok|warn|fail) +(.*)$", line)
        if match:
            return match.group(1), match.group(2)
    raise AssertionError(f"no row {gate!r} in:\n{stdout}")


def hint(stdout: str, gate: str) -> str:
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"^  {gate} +(warn|fail) ", line):
            return lines[index + 1].strip().removeprefix("hint: ")
    raise AssertionError(f"no hint for {gate!r} in:\n{stdout}")


@pytest.fixture
def project(tmp_path, sample_venvs):
    return GatedProject(tmp_path, venvs=sample_venvs)


def test_all_gates_pass_table_exactly(project):
    sha = project.head()
    code, out, err = project.predeploy("--env=staging")
    assert (code, err) == (0, "")
    env_file = project.root("staging") / "shared" / ".env"
    assert disk(out).splitlines() == [
        f"Predeploy gates for HEAD ({sha[:12]}) to staging:",
        "  gate        result  message",
        "  tree        ok      The work tree is clean.",
        f"  ref         ok      HEAD is {sha[:12]} (Sample project).",
        "  promotion   ok      staging takes any commit (no promote_from).",
        "  pipelines   ok      staging requires no test pipeline.",
        "  window      ok      staging has no deploy window: any time.",
        "  deployer    ok      staging lists no deployers: anyone may deploy.",
        "  secrets     ok      No secret literal in settings/staging.py, settings/deployed.py, "
        "settings/base.py.",
        f"  settings    ok      settings.staging imports with {env_file}.",
        "  check       ok      check --deploy --fail-level ERROR: no issue at ERROR or above.",
        "  migrations  ok      No model change lacks a migration.",
        "  database    ok      The sqlite database file does not exist yet: migrate creates it.",
        "  plan        ok      A new database: every migration runs.",
        f"  disk        ok      N MiB free at {project.root('staging')}; about N MiB needed.",
        "  reload      ok      No app server is managed (server type none).",
        "14 ok, 0 warn, 0 fail: may deploy.",
    ]
    # Nothing changed: no deploy root content beyond the .env the test wrote, no database.
    # (Django's FileBasedCache makes its directory, empty, when the target settings'
    # cache is first touched: the sample project keeps it in shared/cache.)
    # (venvs/ holds the links to the session's virtualenvs the test made, not the gates.)
    found = sorted(
        str(p.relative_to(project.root("staging")))
        for p in project.root("staging").rglob("*")
        if p.relative_to(project.root("staging")).parts[0] != "venvs"
    )
    assert found == ["shared", "shared/.env", "shared/cache"]
    assert list((project.root("staging") / "shared" / "cache").iterdir()) == []


def test_json_exactly_and_exit_1_on_failure(project):
    sha = project.head()
    code, data = project.predeploy_json("--env=live")
    assert code == 1
    for gate in data["gates"]:
        gate["message"] = disk(gate["message"])
    live_root = project.root("live")
    assert data == {
        "ok": False,
        "env": "live",
        "ref": "HEAD",
        "commit": sha,
        "gates": [
            {"name": "tree", "result": "ok", "message": "The work tree is clean.", "hint": ""},
            {
                "name": "ref",
                "result": "ok",
                "message": f"HEAD is {sha[:12]} (Sample project).",
                "hint": "",
            },
            {
                "name": "promotion",
                "result": "fail",
                "message": f"{sha[:12]} has not passed staging (no successful deploy tagged "
                "cd/staging/<n> points at it).",
                "hint": "No commit has passed staging yet: deploy --env=staging first. "
                "Or --force --reason '...' (recorded).",
            },
            {
                "name": "pipelines",
                "result": "ok",
                "message": "live requires no test pipeline.",
                "hint": "",
            },
            {
                "name": "window",
                "result": "ok",
                "message": "live has no deploy window: any time.",
                "hint": "",
            },
            {
                "name": "deployer",
                "result": "ok",
                "message": "live lists no deployers: anyone may deploy.",
                "hint": "",
            },
            {
                "name": "secrets",
                "result": "ok",
                "message": "No secret literal in settings/live.py, settings/deployed.py, "
                "settings/base.py.",
                "hint": "",
            },
            {
                "name": "settings",
                "result": "ok",
                "message": f"settings.live imports with {live_root}/shared/.env.",
                "hint": "",
            },
            {
                "name": "check",
                "result": "fail",
                "message": "check --deploy --fail-level WARNING fails: ?: (security.W008) Your "
                "SECURE_SSL_REDIRECT setting is not set to True. Unless your site should be "
                "available over both SSL and non-SSL connections, you may want to either set "
                "this setting True or configure a load balancer or reverse-proxy server to "
                "redirect all connections to HTTPS.",
                "hint": "Fix them in settings.live; run DJANGO_SETTINGS_MODULE=settings.live "
                "manage.py check --deploy --fail-level WARNING to see them all.",
            },
            {
                "name": "migrations",
                "result": "ok",
                "message": "No model change lacks a migration.",
                "hint": "",
            },
            {
                "name": "database",
                "result": "ok",
                "message": "The sqlite database file does not exist yet: migrate creates it.",
                "hint": "",
            },
            {
                "name": "plan",
                "result": "ok",
                "message": "A new database: every migration runs.",
                "hint": "",
            },
            {
                "name": "disk",
                "result": "ok",
                "message": f"N MiB free at {live_root}; about N MiB needed.",
                "hint": "",
            },
            {
                "name": "reload",
                "result": "ok",
                "message": "No app server is managed (server type none).",
                "hint": "",
            },
        ],
    }


def test_dirty_tree(project):
    settings = project.repo / "sampleproject" / "notes" / "views.py"
    settings.write_text(settings.read_text() + "\n# local edit\n")
    code, out, _ = project.predeploy("--env=staging")
    assert code == 1
    assert row(out, "tree") == ("fail", "Uncommitted changes (sampleproject/notes/views.py).")
    assert hint(out, "tree") == (
        "Commit or stash them, or pass --allow-dirty to deploy the commit anyway."
    )
    code, out, _ = project.predeploy("--env=staging", "--allow-dirty")
    assert code == 0
    assert row(out, "tree") == (
        "warn",
        "Uncommitted changes (sampleproject/notes/views.py); the commit is deployed without them.",
    )
    project.set_fields("staging", allow_dirty=False)
    settings.write_text(settings.read_text() + "\n# another local edit\n")
    code, out, _ = project.predeploy("--env=staging", "--allow-dirty")
    assert code == 1
    assert row(out, "tree") == (
        "fail",
        "Uncommitted changes (sampleproject/notes/views.py); environment 'staging' takes "
        "only clean checkouts (allow_dirty is False).",
    )


def test_ref_that_does_not_resolve(project):
    code, out, err = project.predeploy("--env=staging", "--ref=no-such-branch")
    assert code == 1
    assert row(out, "ref") == (
        "fail",
        f"Ref 'no-such-branch' does not exist in {project.repo}. Use a branch, tag or commit "
        "that `git rev-parse` knows (fetch first?).",
    )
    assert "1 ok, 0 warn, 1 fail: may NOT deploy." in out
    assert err.splitlines()[:2] == [
        "CommandError: Predeploy gates failed (ref): nothing was changed.",
        f"  ref: Ref 'no-such-branch' does not exist in {project.repo}. Use a branch, tag or "
        "commit that `git rev-parse` knows (fetch first?).",
    ]


def test_missing_pipeline_result(project):
    sha = project.set_fields("staging", required_pipelines=["unit"])
    code, out, _ = project.predeploy("--env=staging")
    assert code == 1
    assert row(out, "pipelines") == (
        "fail",
        f"Required pipelines lack a pass for {sha[:12]}: unit: no result recorded.",
    )
    assert hint(out, "pipelines") == (
        f"On a clean checkout of {sha[:12]}: manage.py test --pipeline=unit "
        "(runs with test labels, -k or local changes never count)."
    )
    tests = project.run_tests("--pipeline=unit")
    assert tests.returncode == 0, tests.stderr
    code, out, _ = project.predeploy("--env=staging")
    assert code == 0
    assert row(out, "pipelines") == ("ok", f"unit passed for {sha[:12]}.")


def test_failed_pipeline_result(project):
    test_file = project.repo / "sampleproject" / "notes" / "tests" / "test_models.py"
    test_file.write_text(
        test_file.read_text()
        + "\n\nclass BrokenTests(SimpleTestCase):\n    def test_broken(self):\n"
        "        self.assertEqual(1, 2)\n"
    )
    if "SimpleTestCase" not in test_file.read_text().split("class BrokenTests")[0]:
        test_file.write_text("from django.test import SimpleTestCase\n" + test_file.read_text())
    project.fields["staging"]["required_pipelines"] = ["unit"]
    project._write_settings()
    sha = commit_all(project.repo, "A failing unit test")
    tests = project.run_tests("--pipeline=unit")
    assert tests.returncode == 1
    code, out, _ = project.predeploy("--env=staging")
    assert code == 1
    result, message = row(out, "pipelines")
    assert result == "fail"
    assert re.fullmatch(
        rf"Required pipelines lack a pass for {sha[:12]}: unit: failed \(\d+ run, 1 failures, "
        r"0 errors, 0 skipped\)\.",
        message,
    ), message


def _closed_and_open_windows() -> tuple[str, str]:
    today = datetime.now(UTC)
    other_day = DAYS[(today + timedelta(days=3)).weekday()]
    return f"{other_day} 00:00-24:00", f"{DAYS[today.weekday()]} 00:00-24:00 UTC"


def test_closed_window_fails_unless_forced(project):
    closed, open_ = _closed_and_open_windows()
    project.set_fields("staging", deploy_window=closed)
    code, out, _ = project.predeploy("--env=staging")
    assert code == 1
    result, message = row(out, "window")
    assert result == "fail"
    assert message.endswith(f"is outside the deploy window {closed!r}.")
    assert hint(out, "window") == (
        "Deploy inside the window, when someone can react, or --force --reason '...'."
    )
    code, out, _ = project.predeploy("--env=staging", "--force", "--reason", "INC-42 hotfix")
    assert code == 0
    result, message = row(out, "window")
    assert result == "warn"
    assert message.endswith(f"outside the deploy window {closed!r}. Forced: INC-42 hotfix")
    code, _, err = project.predeploy("--env=staging", "--force")
    assert code == 1
    assert err.strip() == (
        "CommandError: --force needs --reason 'why', which is recorded in the history."
    )
    project.set_fields("staging", deploy_window=open_)
    code, out, _ = project.predeploy("--env=staging")
    assert code == 0
    result, message = row(out, "window")
    assert (result, message.endswith(f"is inside the deploy window {open_!r}.")) == ("ok", True)


def test_unpermitted_deployer(project):
    project.set_fields("staging", deployers=["ci:alice", "git:ops@example.com"])
    code, out, _ = project.predeploy("--env=staging", env={"GITHUB_ACTOR": "mallory"})
    assert code == 1
    result, message = row(out, "deployer")
    assert result == "fail"
    assert message.endswith(
        "git Dee Ployer <dee@example.com>, ci GITHUB_ACTOR=mallory is not among the deployers "
        "of staging: ci:alice, git:ops@example.com."
    )
    code, out, _ = project.predeploy("--env=staging", env={"GITHUB_ACTOR": "alice"})
    assert code == 0
    result, message = row(out, "deployer")
    assert (result, message.endswith("ci GITHUB_ACTOR=alice is permitted ('ci:alice').")) == (
        "ok",
        True,
    )


def test_missing_secret_on_the_target(project):
    values = project.env_file_values("staging")
    project.write_env_file("staging", DJANGO_SECRET_KEY=None)
    code, out, err = project.predeploy("--env=staging")
    assert code == 1
    env_file = project.root("staging") / "shared" / ".env"
    result, message = row(out, "settings")
    assert result == "fail"
    assert message.startswith(f"settings.staging cannot be imported with {env_file}: ")
    assert "DJANGO_SECRET_KEY" in message
    assert hint(out, "settings").startswith(f"Add the missing variables to {env_file}")
    # The other target gates need the settings; they are not listed.
    assert "  check " not in out
    assert values["DATABASE_URL"] not in out + err


def test_unreachable_database_masks_the_password(project):
    port = free_port()  # nothing listens there
    project.write_env_file(
        "staging", DATABASE_URL=f"postgres://cd:s3cret-pw-123@127.0.0.1:{port}/nowhere"
    )
    code, out, err = project.predeploy("--env=staging")
    assert code == 1
    result, message = row(out, "database")
    assert result == "fail"
    assert message.startswith("The database is not reachable: OperationalError: ")
    assert str(port) in message
    assert "s3cret-pw-123" not in out + err
    assert hint(out, "database").startswith("Check DATABASE_URL")


def test_committed_secret(project):
    staging = project.repo / "settings" / "staging.py"
    staging.write_text(staging.read_text() + '\nSECRET_KEY = "committed-by-mistake-0123456789"\n')
    line = staging.read_text().splitlines().index('SECRET_KEY = "committed-by-mistake-0123456789"')
    commit_all(project.repo, "Oops")
    code, out, err = project.predeploy("--env=staging")
    assert code == 1
    assert row(out, "secrets") == (
        "fail",
        f"Secret-looking literal(s) committed in staging's settings: settings/staging.py:"
        f"{line + 1}: SECRET_KEY is a string literal.",
    )
    assert "committed-by-mistake" not in out + err


IRREVERSIBLE = """\
from django.db import migrations


def forwards(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [migrations.RunPython(forwards)]
"""


def test_irreversible_migration_fails_on_live_warns_on_staging(project):
    project.write_env_file("live", DJANGO_SECURE_SSL_REDIRECT=None)
    for env in ("staging", "live"):
        # The databases exist and are up to date with the current code.
        migrate = project.manage(
            "migrate",
            env={
                "DJANGO_SETTINGS_MODULE": f"settings.{env}",
                "DJANGO_ENV_FILE": str(project.root(env) / "shared" / ".env"),
            },
        )
        assert migrate.returncode == 0, migrate.stderr
    write_file(project.repo / "sampleproject/notes/migrations/0003_backfill.py", IRREVERSIBLE)
    sha = commit_all(project.repo, "Backfill without a way back")
    expected = (
        "1 migration(s) to apply: notes.0003_backfill. Risky{where}: notes.0003_backfill: "
        "irreversible (Raw Python operation)."
    )
    code, out, _ = project.predeploy("--env=live", f"--ref={sha}")
    assert code == 1
    assert row(out, "plan") == ("fail", expected.format(where=" on live"))
    code, out, _ = project.predeploy("--env=staging")
    assert code == 0
    assert row(out, "plan") == ("warn", expected.format(where=""))


def test_cannot_evaluate_exits_2(project):
    code, _, err = project.predeploy("--env=nosuch")
    assert code == 2
    assert err.strip().startswith("CommandError: Unknown environment 'nosuch'.")
    # A checkout that is not a git repository: nothing to evaluate a commit of.
    git(project.repo, "rev-parse", "HEAD")
    (project.repo / ".git").rename(project.repo / "git-moved-away")
    code, out, err = project.predeploy("--env=staging")
    assert (code, out) == (2, "")
    assert err.strip().startswith("CommandError: The gates could not be evaluated: ")
    assert "is not inside a git repository" in err
