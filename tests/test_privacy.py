"""Secrets and data stay private, on real deploys of the sample project (git, pip,
manage.py, gunicorn, SQLite and the real PostgreSQL on 127.0.0.1:5432).

- A DATABASE_URL password that needs percent-encoding never shows, in any
  spelling, in the output, the --json error_output, history or manifests.
- After a deploy made under umask 000 over a root left loose by an older
  version, no other user can read anything under the root (tried as ``nobody``).
- ``rollback --with-db`` says what it loses and asks: y/N at a terminal (a pty),
  refused without --yes otherwise.

One project per module (the venv build is the slow part); each test sets up the
deploy it needs, so any test runs alone and in any order.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.pipeline_support import (
    Project,
    branch_with,
    commit_all,
    current,
    git,
    history,
    write_file,
)

MIGRATIONS = "sampleproject/notes/migrations"
PG_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
NOBODY = 65534


def manage(
    project: Project,
    *args: str,
    umask: int | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """The checkout's manage.py for real, stdin not a terminal, under ``umask``."""
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
    environ.pop("COVERAGE_PROCESS_START", None)
    return subprocess.run(
        [sys.executable, str(project.repo / "sampleproject" / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=environ,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"django_cd_privacy_{secrets.token_hex(4)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(PG_SERVER, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="module")
def project(sample_venvs: Path) -> Iterator[Project]:
    # Outside pytest's 0700 temp dir, so that "nobody cannot read it" is django-cd's doing.
    base = Path(tempfile.mkdtemp(prefix="django-cd-privacy-"))
    os.chmod(base, 0o755)
    project = Project(base, envs=("staging", "vault"), venvs=sample_venvs)
    try:
        result = manage(project, "deploy", "--env=staging")
        assert result.returncode == 0, result.stdout + result.stderr
        yield project
    finally:
        project.stop_servers()
        shutil.rmtree(base, ignore_errors=True)


# 1. Masking -------------------------------------------------------------------------

LEAKING_MIGRATION = """from urllib.parse import quote

from django.conf import settings
from django.db import migrations


def leak(apps, schema_editor):
    password = settings.DATABASES["default"]["PASSWORD"]  # decoded, as Django uses it
    print("connecting with", password, quote(password, safe=""), repr(password))
    print(settings.DATABASES["default"])
    raise RuntimeError("backfill failed for " + password)


class Migration(migrations.Migration):
    dependencies = [("notes", "0002_note_author_pinned")]
    operations = [migrations.RunPython(leak, migrations.RunPython.noop)]
"""


def test_a_percent_encoded_database_password_never_shows(project: Project, database: str) -> None:
    password = f"s3/cr@t:{secrets.token_hex(4)}"
    encoded = quote(password, safe="")
    project.write_env_file(
        "vault", DATABASE_URL=f"postgres://postgres:{encoded}@127.0.0.1:5432/{database}"
    )
    # From the first commit: main may carry other tests' migrations by now.
    first = git(project.repo, "rev-list", "--max-parents=0", "main").strip()
    sha = branch_with(
        project,
        f"leak-{secrets.token_hex(3)}",
        first,
        {f"{MIGRATIONS}/0003_leak.py": LEAKING_MIGRATION},
    )
    result = manage(project, "deploy", "--env=vault", "--json", f"--ref={sha}")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert (data["status"], data["failed_step"]) == ("failed", "migrate")
    # The reproduction: the failing migration's output is there, its secret is not.
    assert "RuntimeError: backfill failed for ********" in data["error_output"]
    assert "'PASSWORD': '********'" in data["error_output"]
    root = project.root("vault")
    records = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "history": (root / "history.jsonl").read_text(),
        **{str(p): p.read_text() for p in root.glob("releases/*/release.json")},
    }
    # And nothing else django-cd wrote under the root (all but .env, each release's
    # private copy of it, and the venvs).
    for path in everything_under(root):
        if (
            os.path.isfile(path)
            and "/venvs/" not in path
            and not path.endswith(("/.env", "/release.env"))
        ):
            records[path] = Path(path).read_text(errors="replace")
    spellings = {password, encoded, quote(password), repr(password), "cr@t:"}
    leaks = [(where, s) for where, text in records.items() for s in spellings if s in text]
    assert leaks == []
    assert history(project, "vault")[-1]["failed_step"] == "migrate"


# 2. Private files -------------------------------------------------------------------

_PROBE = """
import os, sys, json
readable = []
for path in json.load(sys.stdin):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").close()
        readable.append(path)
    except OSError:
        pass
print(json.dumps(readable))
"""


def readable_by_nobody(paths: list[str]) -> list[str]:
    """The paths that user ``nobody`` can open: a real other user tries each."""
    # The system's Python: the test's own venv may sit where nobody may not go.
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
    result = subprocess.run(
        [python, "-c", _PROBE],
        cwd="/",
        input=json.dumps(paths),
        capture_output=True,
        text=True,
        user=NOBODY,
        group=NOBODY,
        check=True,
    )
    readable: list[str] = json.loads(result.stdout)
    return readable


def everything_under(root: Path) -> list[str]:
    paths = [str(root)]
    for directory, dirs, files in os.walk(root):
        paths += [os.path.join(directory, name) for name in dirs + files]
    return paths


def loosen(root: Path) -> None:
    """What versions before this one left: 0755 directories, 0644 files."""
    for path in everything_under(root):
        if not os.path.islink(path):
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def new_migration(project: Project) -> str:
    """Commit a new AddField migration on main; returns its name."""
    folder = project.repo / MIGRATIONS
    numbered = sorted(p.stem for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))
    number = len(numbered) + 1
    name = f"{number:04d}_note_extra{number}"
    write_file(
        folder / f"{name}.py",
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('notes', {numbered[-1]!r})]\n"
        "    operations = [\n"
        f"        migrations.AddField('note', 'extra{number}', "
        "models.CharField(max_length=20, default='x')),\n"
        "    ]\n",
    )
    commit_all(project.repo, f"Add {name}")
    return name


@pytest.fixture
def migrated(project: Project) -> dict[str, str]:
    """A deploy that applied a new migration, so it took a backup of the release before."""
    before = current(project)
    new_migration(project)
    result = manage(project, "deploy", "--env=staging", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["previous"] == before and data["backup"]
    return {"previous": before or "", "release": data["release"], "backup": data["backup"]}


def test_nobody_else_can_read_the_deploy_root_whatever_the_umask(project: Project) -> None:
    root = project.root("staging")
    loosen(root)
    assert root / "history.jsonl" in map(Path, readable_by_nobody(everything_under(root)))
    new_migration(project)
    result = manage(project, "deploy", "--env=staging", "--json", umask=0o000)
    assert result.returncode == 0, result.stdout + result.stderr
    release = json.loads(result.stdout)["release"]
    backup = Path(json.loads(result.stdout)["backup"])
    # The probe itself works: the checkout next to the root stays world-readable.
    assert readable_by_nobody([str(project.repo / ".gitignore")]) == [
        str(project.repo / ".gitignore")
    ]
    assert readable_by_nobody(everything_under(root)) == []
    expected = {
        root: 0o700,
        root / "releases": 0o700,
        root / "shared": 0o700,
        root / "shared" / "backups": 0o700,
        root / "shared" / "log": 0o700,
        root / "history.jsonl": 0o600,
        root / "shared" / ".env": 0o600,
        root / "releases" / release / "release.json": 0o600,
        root / "releases" / release / "REVISION": 0o600,
        root / "releases" / release / "release.env": 0o600,
        backup: 0o600,
    }
    assert {path: mode(path) for path in expected} == expected
    for state in (root / "shared" / "run").glob("*.json"):
        assert mode(state) == 0o600, state


# 3. rollback --with-db asks first ----------------------------------------------------


def columns(project: Project) -> list[str]:
    db = project.root("staging") / "shared" / "db.sqlite3"
    with sqlite3.connect(db) as connection:
        return [row[1] for row in connection.execute("PRAGMA table_info(notes_note)")]


def assert_loss_described(output: str, migrated: dict[str, str]) -> None:
    taken = time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.stat(migrated["backup"]).st_mtime))
    assert f"rollback --with-db restores the database from {migrated['backup']}," in output
    assert re.search(rf"taken {taken}:\d\d UTC \(\d+ (s|min \d+ s) ago\)", output), output
    assert f"to go back to release {migrated['previous']}." in output
    assert "Every write to the database since then is lost" in output
    assert re.search(r"and [1-9]\d* deploy/rollback event\(s\) recorded in history", output)


def test_with_db_outside_a_terminal_is_refused_without_yes(
    project: Project, migrated: dict[str, str]
) -> None:
    events = len(history(project))
    result = manage(project, "rollback", "--env=staging", "--with-db")
    assert result.returncode == 1
    assert_loss_described(result.stderr, migrated)
    assert (
        "CommandError: rollback --with-db asks before it discards data, and stdin is not a "
        "terminal: run again with --yes to confirm. Nothing was changed."
    ) in result.stderr
    assert current(project) == migrated["release"]
    assert len(history(project)) == events
    assert not (project.root("staging") / ".lock").exists()


def test_with_db_and_yes_restores_without_asking(
    project: Project, migrated: dict[str, str]
) -> None:
    added = columns(project)[-1]
    result = manage(project, "rollback", "--env=staging", "--with-db", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_loss_described(result.stderr, migrated)
    assert current(project) == migrated["previous"]
    assert added not in columns(project)
    last = history(project)[-1]
    assert (last["event"], last["status"], last["with_db"]) == ("rollback", "success", True)


def at_a_terminal(project: Project, answer: bytes) -> tuple[int, str]:
    """Run ``rollback --with-db`` on a pty, answer the question, return (status, output)."""
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
    environ.pop("COVERAGE_PROCESS_START", None)
    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, str(project.repo / "sampleproject" / "manage.py"), "rollback",
         "--env=staging", "--with-db", "--no-color"],
        stdin=slave, stdout=slave, stderr=slave, env=environ, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[y/N] " in output:
                os.write(master, answer)
                answered = True
        return process.wait(timeout=600), output.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def test_with_db_at_a_terminal_asks_and_no_changes_nothing(
    project: Project, migrated: dict[str, str]
) -> None:
    events = len(history(project))
    status, output = at_a_terminal(project, b"n\n")
    assert status == 1
    assert_loss_described(output, migrated)
    assert "Restore it and lose those writes? [y/N] " in output
    assert "Rollback cancelled. Nothing was changed." in output
    assert current(project) == migrated["release"]
    assert len(history(project)) == events


def test_with_db_at_a_terminal_goes_on_after_yes(
    project: Project, migrated: dict[str, str]
) -> None:
    added = columns(project)[-1]
    status, output = at_a_terminal(project, b"y\n")
    assert status == 0, output
    assert "Restore it and lose those writes? [y/N] " in output
    assert current(project) == migrated["previous"]
    assert added not in columns(project)
    assert history(project)[-1]["with_db"] is True
