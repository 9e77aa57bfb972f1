"""The production case: a deploy against the real PostgreSQL on 127.0.0.1:5432.

The backup is taken with pg_dump (django-dbbackup's binary connector); when a
release with an irreversible migration fails after the switch, the database
is restored from it and equals its pre-deploy state again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.pipeline_support import Project, branch_with, current, get, git, history

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
VIEWS = "sampleproject/notes/views.py"
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
def project(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("postgres"))
    project.write_env_file(
        "staging", DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}"
    )
    try:
        yield project
    finally:
        project.stop_servers()


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
    project: Project, database: str
) -> None:
    code, first, stderr = project.deploy()
    assert code == 0, stderr
    assert first["backup"].endswith(f"{first['release']}.dump")
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as db:
        db.execute(
            "INSERT INTO notes_note (title, body, author, pinned, created_at) "
            "VALUES ('Kept in Postgres', '', 'pat', false, now())"
        )
    before = snapshot(database)

    views = (project.repo / VIEWS).read_text()
    broken = views.replace(
        "class NoteListView(ListView):",
        "class NoteListView(ListView):\n    def get(self, request):\n        1 / 0\n",
    )
    base = git(project.repo, "rev-parse", "HEAD").strip()
    branch_with(
        project,
        "pg-irreversible-500",
        base,
        {VIEWS: broken, "sampleproject/notes/migrations/0003_note_colour.py": IRREVERSIBLE},
    )
    code, data, stderr = project.deploy("staging", "--ref=pg-irreversible-500")
    assert code == 1
    assert (data["status"], data["failed_step"]) == ("rolled_back", "smoke")
    assert data["migrations"] == ["notes.0003_note_colour"]
    undo = {step["name"]: step for step in data["rollback_steps"]}
    assert undo["database"]["detail"] == f"restored {data['release']}.dump"
    assert snapshot(database) == before
    assert current(project) == first["release"]
    status, release, body = get(project.url("staging"))
    assert (status, release) == (200, first["release"])
    assert "Kept in Postgres" in body
    assert history(project)[-1]["status"] == "rolled_back"
