"""The production case: a deploy against the real PostgreSQL on 127.0.0.1:5432.

The backup is taken with pg_dump (django-dbbackup's binary connector); when a
release with an irreversible migration fails after the switch, the database
is restored from it into a clean schema and equals its pre-deploy state
again, objects the failed release created included. A rollback across an
additive migration switches the code first, and drops no request under load.

The module fixture deploys the sample project once; each test branches from
that commit and leaves the database at its schema, so any test runs alone.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.pipeline_support import Project, branch_with, current, get, history
from tests.servers_support import Load, failures, latency_summary, rollback

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
VIEWS = "sampleproject/notes/views.py"
MODELS = "sampleproject/notes/models.py"
MIGRATIONS = "sampleproject/notes/migrations"
TAG_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.CreateModel(
            "Tag",
            [
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=40, unique=True)),
            ],
        ),%s
    ]
"""
SUBTITLE_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "subtitle", models.CharField(max_length=50, null=True)),
    ]
"""


def with_tag(project: Project) -> str:
    """models.py with the Tag model TAG_MIGRATION creates (the gates compare them)."""
    return (project.repo / MODELS).read_text() + (
        "\n\nclass Tag(models.Model):\n    id = models.BigAutoField(primary_key=True)\n"
        "    name = models.CharField(max_length=40, unique=True)\n"
    )


IRREVERSIBLE = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "colour", models.CharField(max_length=20, default="red")),
        migrations.RunPython(lambda apps, schema_editor: None),
    ]
"""


def admin(sql: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(sql)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"django_cd_deploy_{secrets.token_hex(4)}"
    try:
        admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is needed (make services): {error}")
    yield name
    admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    admin(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, database: str, sample_venvs: Path
) -> Iterator[Project]:
    # The backups at pg_dump's fastest level: every restore below reads one.
    project = Project(
        tmp_path_factory.mktemp("postgres"), options={"backup_compression": 1}, venvs=sample_venvs
    )
    project.write_env_file(
        "staging", DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}"
    )
    try:
        yield project
    finally:
        project.stop_servers()


@pytest.fixture(scope="module")
def first(project: Project, database: str) -> dict[str, Any]:
    """The first deploy: every migration, with a pg_dump backup first."""
    code, data, stderr = project.deploy()
    assert code == 0, stderr
    listed = subprocess.run(
        ["pg_restore", "--list", data["backup"]], capture_output=True, text=True, check=True
    )
    assert ";     Compression: 1\n" in listed.stdout
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as db:
        db.execute(
            "INSERT INTO notes_note (title, body, author, pinned, created_at) "
            "VALUES ('Kept in Postgres', '', 'pat', false, now())"
        )
    return data


def base_commit(project: Project, first: dict[str, Any]) -> str:
    return str(first["commit"])


def relations(database: str, like: str) -> list[tuple[str, str]]:
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as db:
        rows = db.execute(
            "SELECT relname, relkind::text FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE nspname = 'public' AND relname LIKE %s "
            "ORDER BY relname",
            (like,),
        ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def snapshot(database: str) -> dict[str, Any]:
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as db:
        columns = db.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name NOT LIKE 'django_cd_deployment%' "
            "ORDER BY table_name, column_name"
        ).fetchall()
        applied = db.execute(
            "SELECT app, name FROM django_migrations ORDER BY app, name"
        ).fetchall()
        notes = db.execute("SELECT id, title, author FROM notes_note ORDER BY id").fetchall()
    return {"columns": columns, "migrations": applied, "notes": notes}


def test_failed_release_with_irreversible_migration_restores_pg_backup(
    project: Project, database: str, first: dict[str, Any]
) -> None:
    assert first["backup"].endswith(f"{first['release']}.dump")
    serving = current(project)
    before = snapshot(database)

    views = (project.repo / VIEWS).read_text()
    broken = views.replace(
        "class NoteListView(ListView):",
        "class NoteListView(ListView):\n    def get(self, request):\n        1 / 0\n",
    )
    branch_with(
        project,
        "pg-irreversible-500",
        base_commit(project, first),
        {VIEWS: broken, "sampleproject/notes/migrations/0003_note_colour.py": IRREVERSIBLE},
    )
    code, data, _ = project.deploy("staging", "--ref=pg-irreversible-500")
    assert code == 1
    assert (data["status"], data["failed_step"]) == ("rolled_back", "smoke")
    assert data["migrations"] == ["notes.0003_note_colour"]
    undo = {step["name"]: step for step in data["rollback_steps"]}
    assert undo["database"]["detail"] == f"restored {data['release']}.dump"
    assert snapshot(database) == before
    assert current(project) == serving
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, serving)
    assert "Kept in Postgres" in body
    assert history(project)[-1]["status"] == "rolled_back"


def test_restore_drops_what_the_failed_release_created(
    project: Project, database: str, first: dict[str, Any]
) -> None:
    """The failed release created table notes_tag (with its sequence and indexes);
    the restore removes them, so the fixed release that creates it again deploys."""
    serving = current(project)
    before = snapshot(database)
    views = (project.repo / VIEWS).read_text()
    broken = views.replace(
        "class NoteListView(ListView):",
        "class NoteListView(ListView):\n    def get(self, request):\n        1 / 0\n",
    )
    irreversible = (
        TAG_MIGRATION % "\n        migrations.RunPython(lambda apps, schema_editor: None),"
    )
    branch_with(
        project,
        "pg-tag-fails",
        base_commit(project, first),
        {VIEWS: broken, MODELS: with_tag(project), f"{MIGRATIONS}/0003_tag.py": irreversible},
    )
    code, data, stderr = project.deploy("staging", "--ref=pg-tag-fails")
    assert code == 1
    assert (data.get("status"), data.get("failed_step")) == ("rolled_back", "smoke"), stderr
    undo = {step["name"]: step for step in data["rollback_steps"]}
    assert undo["database"]["detail"] == f"restored {data['release']}.dump"
    assert relations(database, "notes_tag%") == []
    assert snapshot(database) == before
    assert current(project) == serving

    branch_with(
        project,
        "pg-tag-fixed",
        base_commit(project, first),
        {MODELS: with_tag(project), f"{MIGRATIONS}/0003_tag.py": TAG_MIGRATION % ""},
    )
    code, fixed, stderr = project.deploy("staging", "--ref=pg-tag-fixed")
    assert code == 0, stderr
    assert fixed["migrations"] == ["notes.0003_tag"]
    created = relations(database, "notes_tag%")
    assert ("notes_tag", "r") in created and ("notes_tag_name_key", "i") in created
    assert get(project.url("staging"))[:2] == (200, fixed["release"])

    # Back to the fixture's schema: a new table only, so the old code serves first.
    code, back, stderr = rollback(project)
    assert code == 0, stderr
    assert [s["name"] for s in back["steps"]] == ["plan", "switch", "reload", "database", "smoke"]
    assert relations(database, "notes_tag%") == []


def test_rollback_across_an_additive_migration_drops_no_request(
    project: Project, database: str, first: dict[str, Any]
) -> None:
    """The newer code reads notes.subtitle; migrating back before the switch would
    make it fail. The rollback switches to the old code first, then drops the column."""
    serving = current(project)
    models = (
        (project.repo / MODELS)
        .read_text()
        .replace(
            "    created_at = models.DateTimeField(auto_now_add=True)\n",
            "    created_at = models.DateTimeField(auto_now_add=True)\n"
            "    subtitle = models.CharField(max_length=50, null=True)\n",
        )
    )
    branch_with(
        project,
        "pg-subtitle",
        base_commit(project, first),
        {MODELS: models, f"{MIGRATIONS}/0003_note_subtitle.py": SUBTITLE_MIGRATION},
    )
    code, data, stderr = project.deploy("staging", "--ref=pg-subtitle")
    assert code == 0, stderr
    assert data["migrations"] == ["notes.0003_note_subtitle"]
    with Load(project.url("staging"), clients=2) as load:
        time.sleep(0.5)
        code, back, stderr = rollback(project)
        assert code == 0, stderr
        time.sleep(0.3)
    steps = {s["name"]: s for s in back["steps"]}
    assert [s["name"] for s in back["steps"]] == ["plan", "switch", "reload", "database", "smoke"]
    detail = (
        f"database matches {data['release']}; 1 migration(s) to unapply; only additions to "
        "undo: old code first, database after the switch"
    )
    assert steps["plan"]["detail"] == detail[:117] + "..."  # step lines hold 120 characters
    summary = f"{len(load.results)} requests, {latency_summary(load.results)}"
    assert len(load.results) > 20, summary
    assert failures(load.results) == [], (summary, failures(load.results)[:5])
    assert {r.release for r in load.results} == {data["release"], serving}
    assert load.results[-1].release == serving
    assert "subtitle" not in [c for _, c, _ in snapshot(database)["columns"]]
