"""``kill -9`` of a deploy during ``migrate`` on the real PostgreSQL: the migrate child
dies with it, PostgreSQL rolls the running migration back (no half-added column),
and ``repair`` brings the database back to what the serving release expects."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Deployed, stop
from tests.pipeline_support import Project, current, get, history
from tests.test_crash import kill_during_migrate

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def admin(sql: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(sql)


def schema(database: str) -> dict[str, list[tuple[str, ...]]]:
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as db:
        columns = db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name LIKE 'notes_%' ORDER BY 1, 2"
        ).fetchall()
        applied = db.execute(
            "SELECT app, name FROM django_migrations WHERE app = 'notes' ORDER BY name"
        ).fetchall()
    return {"columns": columns, "applied": applied}


@pytest.fixture
def on_postgres(tmp_path: Path, sample_venvs: Path) -> Iterator[tuple[Deployed, str]]:
    name = f"django_cd_crash_{secrets.token_hex(4)}"
    try:
        admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is needed (make services): {error}")
    project = Project(tmp_path, venvs=sample_venvs)
    project.write_env_file("staging", DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}")
    try:
        code, data, stderr = project.deploy()
        assert code == 0, stderr
        yield Deployed(project, data), name
    finally:
        stop(project)
        admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        admin(f'DROP DATABASE IF EXISTS "{name}"')


def test_kill_9_during_migrate_on_postgres(
    on_postgres: tuple[Deployed, str], tmp_path: Path
) -> None:
    staging, database = on_postgres
    project = staging.project
    before = schema(database)
    kill_during_migrate(
        staging,
        tmp_path,
        whole_group=False,
        applied=lambda _: [name for _, name in schema(database)["applied"]],
    )
    after_kill = schema(database)
    # 0003 committed; 0004 (a column, then the slow step) rolled back whole by PostgreSQL.
    assert after_kill["applied"][-1] == ("notes", "0003_note_colour")
    assert ("notes_note", "colour") in after_kill["columns"]
    assert ("notes_note", "size") not in after_kill["columns"]

    status = json.loads(project.manage("status", "--env=staging", "--json").stdout)
    assert status["database"]["unknown"] == ["notes.0003_note_colour"]

    repaired = project.manage("repair", "--env=staging")
    assert repaired.returncode == 0, repaired.stderr
    assert schema(database) == before
    assert current(project) == staging.release
    assert get(project.url("staging"))[:2] == (200, staging.release)
    assert history(project)[-1]["event"] == "repair"
