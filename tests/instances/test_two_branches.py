"""Two branches that change the same model, each on its own testing instance (issue 15).

Real SQLite and real PostgreSQL, real gunicorn per instance, the real
``manage.py instance`` command: both instances start from one copy of
staging, migrate their own branch and serve it over HTTP; staging is unchanged;
a refresh brings back staging's current rows; destroying one leaves the other
serving; name and port collisions and the instance limit are refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import stop
from tests.instances_support import InstanceProject, branch_from
from tests.pipeline_support import get

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [
        migrations.AddField("note", "%s", %s),
    ]
"""
VIEWS = "sampleproject/notes/views.py"


def branch(project: InstanceProject, name: str, column: str, field: str, title: str) -> str:
    views = (project.repo / VIEWS).read_text().replace('"Notes board"', f'"{title}"')
    return branch_from(
        project,
        name,
        "main",
        {
            f"sampleproject/notes/migrations/0003_note_{column}.py": MIGRATION % (column, field),
            VIEWS: views,
        },
    )


class Database:
    """Rows and columns of a database of either engine, read from the outside."""

    def __init__(self, project: InstanceProject, which: str) -> None:
        self.project, self.which = project, which

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.project.engine == "postgresql":
            name = self.project.staging_db if self.which == "staging" else self.which
            with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as db:
                cursor = db.execute(sql.replace("?", "%s"), params)
                return list(cursor.fetchall()) if cursor.description else []
        path = (
            self.project.root("staging") / "shared" / "db.sqlite3"
            if self.which == "staging"
            else Path(self.which)
        )
        with sqlite3.connect(path) as db:
            return list(db.execute(sql, params).fetchall())

    def columns(self) -> set[str]:
        if self.project.engine == "postgresql":
            rows = self._run(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'notes_note'"
            )
        else:
            rows = [(row[1],) for row in self._run("PRAGMA table_info(notes_note)")]
        return {str(row[0]) for row in rows}

    def notes(self) -> list[tuple[Any, ...]]:
        return self._run("SELECT title, author FROM notes_note ORDER BY id")

    def emails(self) -> list[tuple[Any, ...]]:
        return self._run("SELECT username, email FROM auth_user ORDER BY id")

    def add_note(self, title: str) -> None:
        self._run(
            "INSERT INTO notes_note (title, body, author, pinned, created_at) "
            "VALUES (?, '', 'pat', ?, '2026-11-23 10:00:00+00')",
            (title, False),
        )

    def add_user(self, username: str, email: str) -> None:
        self._run(
            "INSERT INTO auth_user (username, email, password, first_name, last_name, "
            "is_staff, is_active, is_superuser, date_joined) "
            "VALUES (?, ?, 'pbkdf2_sha256$1$salt$hash', '', '', ?, ?, ?, "
            "'2026-11-23 10:00:00+00')",
            (username, email, False, True, False),
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, sample_venvs: Path
) -> Iterator[InstanceProject]:
    engine = request.param
    project = InstanceProject(
        tmp_path, engine=engine, venvs=sample_venvs, max_instances=2,
        scrub="scrub_personal_data --yes",
    )  # fmt: skip
    if engine == "postgresql":
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{project.staging_db}"')
    try:
        yield project
    finally:
        stop(project)
        project.stop_servers()
        if engine == "postgresql":
            with psycopg.connect(SERVER, autocommit=True) as admin:
                for (name,) in admin.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s",
                    (project.prefix + "%",),
                ).fetchall():
                    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_two_branches_with_migrations_to_one_model(project: InstanceProject) -> None:
    code, _, stderr = project.deploy()
    assert code == 0, stderr
    staging = Database(project, "staging")
    staging.add_note("Kept on staging")
    staging.add_user("pat", "pat@example.com")
    before = {"columns": staging.columns(), "notes": staging.notes(), "users": staging.emails()}
    branch(
        project, "colour", "colour", "models.CharField(max_length=20, default='red')", "Board A"
    )
    branch(project, "priority", "priority", "models.IntegerField(default=0)", "Board B")

    code, a, stderr = project.instance(
        "create", "--env=testing", "feat-a", "--ref", "colour", "--json"
    )
    assert code == 0, stderr
    code, b, stderr = project.instance(
        "create", "--env=testing", "feat-b", "--ref", "priority", "--json"
    )
    assert code == 0, stderr

    # Each serves its own branch, over HTTP, from its own server.
    assert a["url"] != b["url"]
    for instance, title in ((a, "Board A"), (b, "Board B")):
        status, release, body = get(instance["url"])
        assert (status, release) == (200, instance["deploy"]["release"])
        assert title in body and "Kept on staging" in body
    # Each migrated its copy its own way; staging is untouched.
    db_a = Database(project, project.instance_database("feat-a"))
    db_b = Database(project, project.instance_database("feat-b"))
    assert "colour" in db_a.columns() and "priority" not in db_a.columns()
    assert "priority" in db_b.columns() and "colour" not in db_b.columns()
    assert a["deploy"]["migrations"] == ["notes.0003_note_colour"]
    assert {
        "columns": staging.columns(),
        "notes": staging.notes(),
        "users": staging.emails(),
    } == before
    # The scrub hook ran on each copy before it served.
    assert db_a.emails() == [("pat", "")] and db_a.notes() == [("Kept on staging", "someone")]
    assert get(project.url("staging"))[0] == 200

    # Collisions and the limit are refused before anything changes.
    code, _, stderr = project.instance("create", "--env=testing", "feat-a", "--ref", "colour")
    assert code == 1 and "Instance 'feat-a' of 'testing' exists already" in stderr
    code, _, stderr = project.instance("create", "--env=testing", "feat-c", "--ref", "main")
    assert code == 1 and "'testing' has 2 instances, its max_instances" in stderr

    # A refresh brings back staging's current rows, with the branch migrated again
    # (PostgreSQL only, to keep the suite's time: the SQLite copy is the same call).
    staging.add_note("Added later")
    if project.engine == "postgresql":
        code, refreshed, stderr = project.instance("refresh", "--env=testing", "feat-a", "--json")
        assert code == 0, stderr
        assert [n[0] for n in db_a.notes()] == ["Kept on staging", "Added later"]
        assert "colour" in db_a.columns()
        assert "Added later" in get(refreshed["url"])[2]

    code, rows, stderr = project.instance("list", "--env=testing", "--json")
    assert code == 0, stderr
    assert [(r["name"], r["ref"], r["answers"], r["status"]) for r in rows] == [
        ("feat-a", "colour", True, "ready"),
        ("feat-b", "priority", True, "ready"),
    ]

    # Destroying one leaves the other serving.
    code, _, stderr = project.instance("destroy", "--env=testing", "feat-a")
    assert code == 0, stderr
    assert get(b["url"])[:2] == (200, b["deploy"]["release"])
    assert not (project.root("testing") / "feat-a").exists()
    assert _gone(project, project.instance_database("feat-a"))
    code, rows, _ = project.instance("list", "--env=testing", "--json")
    assert [r["name"] for r in rows] == ["feat-b"]
    port = b["url"].rstrip("/").rpartition(":")[2]
    code, _, stderr = project.instance(
        "create", "--env=testing", "feat-c", "--ref", "main", "--port", port
    )
    assert code == 1 and f"Port {port} is taken by instance testing.feat-b" in stderr

    # prune: nothing is a day old; everything is older than no time at all.
    code, pruned, stderr = project.instance(
        "prune", "--env=testing", "--older-than", "1d", "--json"
    )
    assert (code, pruned["pruned"]) == (0, []), stderr
    code, pruned, stderr = project.instance(
        "prune", "--env=testing", "--older-than", "0s", "--json"
    )
    assert (code, pruned["pruned"]) == (0, ["feat-b"]), stderr
    assert get(project.url("staging"))[0] == 200
    assert staging.notes() == before["notes"] + [("Added later", "pat")]


def _gone(project: InstanceProject, database: str) -> bool:
    if project.engine == "sqlite":
        return not Path(database).exists()
    with psycopg.connect(SERVER) as admin:
        return not admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchall()
