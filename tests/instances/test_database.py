"""The engine-aware copy, against real PostgreSQL, SQLite and MariaDB."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from django_cd.instances import database
from django_cd.instances.config import InstanceError

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def pg(name: str) -> database.Database:
    return database.Database.from_url(f"postgres://postgres@127.0.0.1:5432/{name}", "test")


@pytest.fixture
def pg_source() -> Iterator[database.Database]:
    source = pg(f"cdcopy_{secrets.token_hex(4)}")
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{source.name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={source.name}") as db:
        db.execute("CREATE TABLE note (id serial PRIMARY KEY, title text NOT NULL)")
        db.execute("INSERT INTO note (title) SELECT 'n' || g FROM generate_series(1, 500) g")
    yield source
    with psycopg.connect(SERVER, autocommit=True) as admin:
        for (name,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (source.name + "%",)
        ).fetchall():
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def rows(db: database.Database) -> list[tuple[int, str]]:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db.name}") as connection:
        return [(int(i), str(t)) for i, t in connection.execute("SELECT * FROM note ORDER BY id")]


def test_postgres_template_copy_when_idle_dump_when_a_session_is_connected(
    pg_source: database.Database,
) -> None:
    idle = database.copy(pg_source, pg_source.renamed(pg_source.name + "_a"))
    assert idle.method == "CREATE DATABASE ... TEMPLATE"
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_source.name}"):
        busy = database.copy(pg_source, pg_source.renamed(pg_source.name + "_b"))
        with pytest.raises(InstanceError, match="has open sessions"):
            database.copy(pg_source, pg_source.renamed(pg_source.name + "_c"), method="template")
    assert busy.method == "pg_dump | pg_restore"
    expected = rows(pg_source)
    assert len(expected) == 500
    assert rows(pg_source.renamed(pg_source.name + "_a")) == expected
    assert rows(pg_source.renamed(pg_source.name + "_b")) == expected
    assert not database.exists(pg_source.renamed(pg_source.name + "_c"))
    # The copies are databases of their own: writing one leaves the source alone.
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_source.name}_b") as db:
        db.execute("DELETE FROM note")
    assert rows(pg_source) == expected
    assert database.size_mb(pg_source) > 1
    database.drop(pg_source.renamed(pg_source.name + "_a"))
    assert not database.exists(pg_source.renamed(pg_source.name + "_a"))


def test_a_failed_postgres_copy_leaves_no_target(pg_source: database.Database) -> None:
    missing = pg_source.renamed(pg_source.name + "_missing")
    target = pg_source.renamed(pg_source.name + "_t")
    with pytest.raises(InstanceError, match="pg_dump failed"):
        database.copy(missing, target, method="dump")
    assert not database.exists(target)


def test_the_password_never_appears_in_an_error() -> None:
    url = "postgres://nobody:s3cret-Passw0rd@127.0.0.1:1/x"
    db = database.Database.from_url(url, "test")
    with pytest.raises(InstanceError) as error:
        database.exists(db)
    assert "s3cret-Passw0rd" not in str(error.value)
    assert "Cannot connect to PostgreSQL" in str(error.value)


def test_sqlite_online_backup(tmp_path: Path) -> None:
    path = tmp_path / "staging.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE note (title TEXT)")
        db.executemany("INSERT INTO note VALUES (?)", [(f"n{i}",) for i in range(100)])
    source = database.Database.from_url(f"sqlite:///{path}", "test")
    target = source.renamed(str(tmp_path / "copy" / "pr-1.sqlite3"))
    assert target.url == f"sqlite:///{tmp_path}/copy/pr-1.sqlite3"
    before = path.read_bytes()
    with sqlite3.connect(path) as writer:  # a session that holds the source open
        writer.execute("INSERT INTO note VALUES ('uncommitted?')")
        result = database.copy(source, target)
        writer.rollback()
    assert result.method == "sqlite backup API"
    with sqlite3.connect(target.name) as db:
        assert db.execute("SELECT count(*) FROM note").fetchone() == (100,)
    assert path.read_bytes() == before
    assert oct(Path(target.name).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(InstanceError, match="exists already; nothing was copied"):
        database.copy(source, target)
    with sqlite3.connect(target.name) as db:  # what was there is left alone
        assert db.execute("SELECT count(*) FROM note").fetchone() == (100,)
    database.drop(target)
    assert not Path(target.name).exists()


@pytest.mark.skipif(shutil.which("mysqldump") is None, reason="MariaDB client not installed")
def test_mariadb_copy() -> None:
    name = f"cdcopy_{secrets.token_hex(4)}"
    source = database.Database.from_url(f"mysql://root@127.0.0.1:3306/{name}", "test")
    target = source.renamed(name + "_pr")

    def sql(statement: str) -> str:
        return subprocess.run(
            ["mysql", "-h127.0.0.1", "-uroot", "-N", "-e", statement],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    sql(f"CREATE DATABASE {name}; CREATE TABLE {name}.note (title VARCHAR(20));"
        f"INSERT INTO {name}.note VALUES ('a'), ('b');")  # fmt: skip
    try:
        result = database.copy(source, target)
        assert result.method == "mysqldump | mysql"
        assert sql(f"SELECT title FROM {target.name}.note ORDER BY title") == "a\nb\n"
        assert database.exists(target) and database.size_mb(source) >= 0
        database.drop(target)
        assert not database.exists(target)
    finally:
        sql(f"DROP DATABASE IF EXISTS {name}; DROP DATABASE IF EXISTS {name}_pr")
