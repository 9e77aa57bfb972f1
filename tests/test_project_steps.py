"""A project's own deploy steps and the release's defined process environment
(issue 9: steps as data; shared/.env exported, the deployer's shell not inherited).

The end-to-end tests deploy the sample project for real (gunicorn on loopback);
the sample's board title is changed to come from ``os.environ`` only, as in
most Django projects.
"""

from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline import project_steps
from django_cd.pipeline.release import inherited
from tests.conftest import Deployed, stop
from tests.pipeline_support import (
    Project,
    commit_all,
    current,
    db_snapshot,
    django_cd_config,
    get,
    history,
    write_file,
)

MIGRATIONS = "sampleproject/notes/migrations"
BUILD_INFO = "sampleproject/notes/static/notes/build.txt"
# A step before collectstatic that writes a file the app then serves (whitenoise):
# what the step saw of the environment.
BUILD_STEP = {
    "name": "build_info",
    "before": "collectstatic",
    "run": [
        "sh",
        "-c",
        f'mkdir -p "$(dirname {BUILD_INFO})" && '
        f'printf "%s|%s" "$BOARD_TITLE" "${{DEPLOYER_TOKEN:-unset}}" > {BUILD_INFO}',
    ],
}
SEED_STEP = {
    "name": "seed",
    "after": "migrate",
    "run": 'manage.py shell -c "from notes.models import Note; '
    "Note.objects.create(title='Seeded')\"",
    "when": "first_deploy",
}


def env_config(project: Project, **options: Any) -> dict[str, Any]:
    config = django_cd_config(project)
    config["ENVIRONMENTS"]["staging"].update(options)
    return config


def deploy(config: dict[str, Any], *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with override_settings(DJANGO_CD=config):
        call_command("deploy", *args, env="staging", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def title_from_environ(project: Project) -> str:
    """The board title read from os.environ when the views import, as most projects do."""
    views = project.repo / "sampleproject" / "notes" / "views.py"
    text = views.read_text().replace(
        'BOARD_TITLE = "Notes board"',
        'import os\n\nBOARD_TITLE = os.environ.get("BOARD_TITLE", "Notes board")',
    )
    assert "os.environ" in text
    views.write_text(text)
    return commit_all(project.repo, "The board title comes from the environment")


def write_env(project: Project, **values: str) -> None:
    env_file = project.root("staging") / "shared" / ".env"
    env_file.write_text(env_file.read_text() + "".join(f"{k}={v}\n" for k, v in values.items()))


def set_env(project: Project, name: str, value: str) -> None:
    env_file = project.root("staging") / "shared" / ".env"
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith(name)]
    env_file.write_text("\n".join([*lines, f"{name}={value}"]) + "\n")


@pytest.fixture
def fresh(tmp_path: Path, sample_venvs: Path) -> Any:
    project = Project(tmp_path, venvs=sample_venvs)
    try:
        yield project
    finally:
        stop(project)


def test_steps_and_the_env_file_reach_the_release_not_the_deployers_shell(
    fresh: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = fresh
    title_from_environ(project)
    write_env(project, BOARD_TITLE="From the env file")
    # What a CI job or a developer's shell holds must not reach what serves.
    monkeypatch.setenv("BOARD_TITLE", "From the deployer's shell")
    monkeypatch.setenv("DEPLOYER_TOKEN", "ci-token-123")
    config = env_config(project, steps=[BUILD_STEP, SEED_STEP])

    out, _ = deploy(config, "--json")
    first = json.loads(out)
    steps = [(s["name"], s["status"]) for s in first["steps"]]
    assert steps[steps.index(("collectstatic", "ok")) - 1] == ("build_info", "ok")
    assert steps[steps.index(("migrate", "ok")) + 1] == ("seed", "ok")
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, first["release"])
    assert '<a href="/">From the env file</a>' in body
    assert body.count("Seeded") == 1
    # The step ran with shared/.env and without the deployer's variables; the app
    # serves the file it wrote, collected by collectstatic.
    assert get(project.url("staging"), "static/notes/build.txt")[2] == "From the env file|unset"
    snapshot = project.root("staging") / "releases" / first["release"] / "release.env"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600

    # A changed shared/.env: the dry run names what changed (never values), the
    # next deploy's workers run with it (a HUP or USR2 alone would keep the old one).
    set_env(project, "BOARD_TITLE", "Changed in the env file")
    out, _ = deploy(config, "--dry-run")
    assert "  environment (shared/.env): changed: BOARD_TITLE changed" in out.splitlines()
    assert "Changed in the env file" not in out
    assert "  steps: upload, venv, check, clean_pyc, build_info (sh -c 'mkdir -p " in out
    assert "seed (manage.py shell -c " in out and ", first deploy only)" in out
    out, _ = deploy(config, "--json")
    second = json.loads(out)
    assert ("seed", "skipped") in [(s["name"], s["status"]) for s in second["steps"]]
    body = get(project.url("staging"))[2]
    assert '<a href="/">Changed in the env file</a>' in body
    assert body.count("Seeded") == 1

    # A rollback runs the older code with today's shared/.env.
    set_env(project, "BOARD_TITLE", "Rotated again")
    with override_settings(DJANGO_CD=config):
        call_command("rollback", env="staging", stdout=StringIO(), stderr=StringIO())
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, first["release"])
    assert '<a href="/">Rotated again</a>' in body


ADD_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "colour", models.CharField(max_length=20, default="red")),
    ]
"""


def test_a_failing_step_after_migrate_undoes_the_migration_and_one_may_warn(
    staging: Deployed,
) -> None:
    project = staging.project
    serving = current(project)
    db = project.root("staging") / "shared" / "db.sqlite3"
    before = db_snapshot(db)
    write_file(project.repo / MIGRATIONS / "0003_note_colour.py", ADD_FIELD)
    commit_all(project.repo, "A colour for notes")
    warn = {"name": "lint_assets", "after": "serve_check", "run": "sh -c 'exit 3'",
            "on_failure": "warn"}  # fmt: skip
    breaks = {"name": "warm_cache", "after": "migrate", "run": ["sh", "-c", "echo boom; exit 4"]}
    with pytest.raises(CommandError) as failed:
        deploy(env_config(project, steps=[warn, breaks]))
    assert "Step warm_cache: sh -c 'echo boom; exit 4' failed (exit status 4)" in str(failed.value)
    last = history(project)[-1]
    # Stopped before the switch: "failed", nothing changed for users, migration undone.
    assert (last["status"], last["failed_step"]) == ("failed", "warm_cache")
    assert [s["name"] for s in last["steps"]][-3:] == ["backup", "migrate", "warm_cache"]
    assert last["warnings"][0].startswith(
        "Step lint_assets: sh -c 'exit 3' failed (exit status 3)"
    )
    assert current(project) == serving
    assert get(project.url("staging"))[:2] == (200, serving)
    assert db_snapshot(db) == before


def test_arrange_places_steps_in_declared_order() -> None:
    steps = (
        conf.Step("a", ("true",), after="collectstatic"),
        conf.Step("b", ("true",), after="collectstatic"),
        conf.Step("c", ("true",), before="check"),
        conf.Step("d", ("true",), after="a"),
        conf.Step("e", ("true",), after="migrate"),
        conf.Step("clean_pyc", skip=True),
        conf.Step("collectstatic", ("manage.py", "collectstatic", "-i", "*.scss")),
    )
    env = conf.Environment(
        "staging", "settings.staging", "/srv/x", ("local",), (), conf.Server("none"), "parallel",
        "auto", "manage.py", "requirements.txt", None, (), (), None, (), (), steps=steps,
    )  # fmt: skip
    order = project_steps.arrange(env)
    assert [p.name for p in order] == [
        "upload", "venv", "c", "check", "clean_pyc", "collectstatic", "a", "d", "b",
        "serve_check", "plan", "backup", "migrate", "e", "switch", "reload", "processes", "smoke",
        "finish",
    ]  # fmt: skip
    assert [project_steps.describe(p) for p in order[4:6]] == [
        "clean_pyc (skipped)",
        "collectstatic (manage.py collectstatic -i '*.scss')",
    ]
    assert [p.name for p in project_steps.between(order, "migrate", "switch")] == ["e"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("compress", "E060"),
        ([{"run": "x"}], "E060"),
        ([{"name": "compress", "after": "collectstatic", "run": "x", "cmd": "y"}], "E061"),
        ([{"name": "Compress", "after": "collectstatic", "run": "x"}], "E062"),
        (
            [
                {"name": "a", "after": "check", "run": "x"},
                {"name": "a", "after": "check", "run": "y"},
            ],
            "E062",
        ),
        ([{"name": "compress", "run": "manage.py compress"}], "E063"),
        ([{"name": "compress", "after": "plan", "run": "x"}], "E063"),
        ([{"name": "compress", "after": "check", "before": "migrate", "run": "x"}], "E063"),
        ([{"name": "compress", "before": "migrate", "run": "x"}], "E063"),
        ([{"name": "migrate", "run": "manage.py migrate --fake"}], "E063"),
        ([{"name": "serve_check", "skip": True}], "E063"),
        ([{"name": "compress", "skip": True}], "E063"),
        ([{"name": "compress", "after": "check", "run": "echo 'unclosed"}], "E064"),
        ([{"name": "compress", "after": "check", "run": []}], "E064"),
        ([{"name": "compress", "after": "check", "run": "x", "timeout": 0}], "E064"),
        ([{"name": "compress", "after": "check", "run": "x", "on_failure": "ignore"}], "E064"),
        ([{"name": "compress", "after": "check", "run": "x", "when": "sometimes"}], "E064"),
        ([{"name": "compress", "after": "check", "run": "x", "hosts": "all"}], "E064"),
        ([{"name": "clean_pyc", "skip": "yes"}], "E064"),
    ],
)
def test_bad_steps_are_check_errors(tmp_path: Path, steps: Any, expected: str) -> None:
    config = {
        "ENVIRONMENTS": {
            "staging": {"settings": "settings.staging", "root": str(tmp_path), "steps": steps}
        }
    }
    with override_settings(DJANGO_CD=config):
        assert [p.id for p in conf.validate()] == [f"django_cd.{expected}"]


def test_good_steps_pass_the_checks(tmp_path: Path) -> None:
    steps = [
        BUILD_STEP,
        SEED_STEP,
        {
            "name": "compress",
            "after": "collectstatic",
            "run": "manage.py compress --force",
            "timeout": 300,
            "on_failure": "undo",
        },
        {"name": "after_compress", "after": "compress", "run": ["true"], "on_failure": "warn"},
        {"name": "clean_pyc", "skip": True},
        {"name": "check", "run": "manage.py check --deploy --fail-level ERROR"},
    ]
    config = {
        "ENVIRONMENTS": {
            "staging": {"settings": "settings.staging", "root": str(tmp_path), "steps": steps},
        }
    }
    with override_settings(DJANGO_CD=config):
        assert conf.validate() == []
        env = conf.get_environment("staging")
    assert env.steps[2] == conf.Step(
        "compress", ("manage.py", "compress", "--force"), after="collectstatic", timeout=300
    )


def test_inherit_env_is_a_list_of_names(tmp_path: Path) -> None:
    base = {"settings": "settings.staging", "root": str(tmp_path)}
    for value in ("AWS_*", ["AWS_*", "bad name"], ["*"]):
        with override_settings(
            DJANGO_CD={"ENVIRONMENTS": {"staging": {**base, "inherit_env": value}}}
        ):
            assert [p.id for p in conf.validate()] == ["django_cd.E059"]
    good = {"ENVIRONMENTS": {"staging": {**base, "inherit_env": ["SSL_CERT_FILE", "AWS_*"]}}}
    with override_settings(DJANGO_CD=good):
        assert conf.validate() == []


def test_inherited_keeps_the_defaults_and_the_patterns() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "AWS_REGION": "eu",
        "GITHUB_TOKEN": "ghp_secret",
        "DATABASE_URL": "postgres://dev@localhost/dev",
    }
    assert inherited(environ, ["AWS_*"]) == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "AWS_REGION": "eu",
    }


def test_the_check_step_names_each_issue() -> None:
    from django_cd.pipeline.deploy import describe_check_issues

    output = (
        "System check identified some issues:\n\nWARNINGS:\n"
        "?: (security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting.\n"
        "\tHINT: Set it.\n"
        "notes.Note: (models.W042) Auto-created primary key used.\n\n"
        "System check identified 2 issues (0 silenced).\n"
    )
    assert describe_check_issues(output) == (
        "2 issue(s): security.W004, models.W042: security.W004 You have not set a value "
        "for the SECURE_HSTS_SECONDS setting.; models.W042 Auto-created primary key used."
    )
    assert describe_check_issues("System check identified no issues (0 silenced).\n") == (
        "no issues"
    )
