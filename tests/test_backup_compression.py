"""``backup_compression``: pg_dump's level for the deploy's backups (``manage.py cdbackup``).

Against the real PostgreSQL on 127.0.0.1:5432: the level reaches pg_dump (a
level-0 dump is several times a level-9 one), both restore with pg_restore,
and the file is the deploying user's alone. On SQLite the level cannot apply,
and the output says so.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.pipeline_support import REPO_ROOT

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def cdbackup(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "backup.env"
    env_file.write_text(
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(40)}\nDATABASE_URL={database_url}\n"
        "DJANGO_ALLOWED_HOSTS=127.0.0.1\n"
    )
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.staging",
               "DJANGO_ENV_FILE": str(env_file)}  # fmt: skip
    environ.pop("COVERAGE_PROCESS_START", None)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "sampleproject" / "manage.py"), "cdbackup", *args],
        capture_output=True, text=True, env=environ, check=False, timeout=300,
    )  # fmt: skip


def test_the_level_reaches_pg_dump(tmp_path: Path) -> None:
    name = f"cd_backup_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(SERVER.replace("dbname=postgres", f"dbname={name}")) as db:
            db.execute(
                "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 20) AS body "
                "FROM generate_series(1, 20000) AS g"
            )
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
        sizes = {}
        for level in (0, 9):
            path = tmp_path / f"level-{level}.dump"
            result = cdbackup(tmp_path, url, "--output", str(path), "--compression", str(level))
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip().endswith(f"(pg_dump -Z {level}).")
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            listed = subprocess.run(
                ["pg_restore", "--list", str(path)], capture_output=True, text=True, check=True
            )
            assert "TABLE DATA public filler" in listed.stdout
            sizes[level] = path.stat().st_size
        assert sizes[0] > 3 * sizes[9]
    finally:
        with psycopg.connect(SERVER, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_sqlite_says_the_level_does_not_apply(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    db.write_bytes(b"")
    path = tmp_path / "sqlite.dump"
    result = cdbackup(tmp_path, f"sqlite:///{db}", "--output", str(path), "--compression", "1")
    assert result.returncode == 0, result.stderr
    assert "compression 1 not applied: only pg_dump's custom format takes it" in result.stdout
    assert path.exists()
    bad = cdbackup(tmp_path, f"sqlite:///{db}", "--output", str(path), "--compression", "12")
    assert bad.returncode != 0
    assert "invalid choice: 12" in bad.stderr
