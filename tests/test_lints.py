"""Plan lints and the deploy engine's migration questions, on SQLite and PostgreSQL.

tests/lintapp's migrations hold each case; the database is migrated to
lintapp.0001_initial by the real ``migrate``, so 0002-0005 are the pending plan.
Everything runs in ``manage.py`` subprocesses with tests.lint_settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent

COMMON = [
    ("0002_author_email", 0, "backward-incompatible", "NOT_NULL"),
    ("0002_author_email", 3, "backward-incompatible", "DROP_COLUMN"),
    ("0002_author_email", 3, "data-loss", "DROP_COLUMN"),
    ("0002_author_email", 3, "expand-contract", "EXPAND_CONTRACT"),
    ("0003_rename_and_types", 0, "backward-incompatible", "RENAME_COLUMN"),
    ("0003_rename_and_types", 0, "expand-contract", "EXPAND_CONTRACT"),
    ("0003_rename_and_types", 1, "backward-incompatible", "ALTER_COLUMN_TYPE"),
    ("0003_rename_and_types", 3, "backward-incompatible", "NOT_NULL"),
    ("0004_data", 0, "irreversible", "IRREVERSIBLE"),
    ("0004_data", 3, "irreversible", "IRREVERSIBLE"),
    ("0004_data", 3, "backward-incompatible", "DROP_COLUMN"),
    ("0005_drop_shelf", 0, "backward-incompatible", "DROP_TABLE"),
    ("0005_drop_shelf", 0, "data-loss", "DROP_TABLE"),
]
# What only PostgreSQL's SQL shows django-migration-linter: SQLite builds the
# index without a lock worth reporting and adds the constraint by rebuilding
# the table.
POSTGRES_ONLY = [
    ("0003_rename_and_types", 4, "locking", "CREATE_INDEX"),
    ("0005_drop_shelf", 1, "backward-incompatible", "ADD_UNIQUE"),
]


class LintDatabase:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [sys.executable, "-m", "django", *args, "--settings", "tests.lint_settings"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"{args} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed

    def python(self, code: str, **env: str) -> Any:
        """Run ``code`` in ``manage.py shell`` and return the JSON it prints."""
        self.env.update(env)
        return json.loads(self.manage("shell", "-v", "0", "-c", code).stdout)


@pytest.fixture
def sqlite(tmp_path: Path) -> LintDatabase:
    return LintDatabase(
        {"LINT_DB_ENGINE": "django.db.backends.sqlite3", "LINT_DB_NAME": str(tmp_path / "db")}
    )


@pytest.fixture
def postgres() -> Iterator[LintDatabase]:
    name = f"djcd_lint_{uuid.uuid4().hex[:12]}"
    admin = "host=127.0.0.1 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield LintDatabase(
            {
                "LINT_DB_ENGINE": "django.db.backends.postgresql",
                "LINT_DB_NAME": name,
                "LINT_DB_HOST": "127.0.0.1",
                "LINT_DB_USER": "postgres",
            }
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def lint(database: LintDatabase) -> dict[str, Any]:
    database.manage("migrate", "lintapp", "0001_initial")
    report: dict[str, Any] = json.loads(
        database.manage("migrationlint", "lintapp", "--json").stdout
    )
    return report


def found(report: dict[str, Any]) -> list[tuple[str, int, str, str]]:
    return [(f["migration"], f["index"], f["kind"], f["code"]) for f in report["findings"]]


def check_common(report: dict[str, Any]) -> None:
    assert report["verdict"] == "needs restore"
    assert report["needs_restore"] is True
    assert report["notes"] == []
    steps = report["plan"]["steps"]
    assert [(s["name"], s["backwards"], s["reversible"]) for s in steps] == [
        ("0002_author_email", False, True),
        ("0003_rename_and_types", False, True),
        ("0004_data", False, False),
        ("0005_drop_shelf", False, True),
    ]
    assert steps[2]["irreversible"] == ["Raw Python operation", "Raw SQL operation"]
    by_key = {(f["migration"], f["index"], f["kind"]): f for f in report["findings"]}
    assert by_key[("0004_data", 0, "irreversible")]["why"] == (
        "RunPython without reverse_code: migrating back raises IrreversibleError, so rolling "
        "back this release needs a backup restore."
    )
    assert by_key[("0004_data", 3, "backward-incompatible")]["why"] == (
        "SQL: DROPPING columns (table lintapp_shelf, column code)."
    )
    assert by_key[("0002_author_email", 3, "expand-contract")]["why"].startswith(
        "author gains email, bio and loses nickname in one release. Split it over two deploys"
    )
    assert by_key[("0003_rename_and_types", 1, "backward-incompatible")]["why"].startswith(
        "changes the column type of author.name from varchar(50) to varchar(30);"
    )
    assert by_key[("0002_author_email", 0, "backward-incompatible")]["operation"] == (
        "Add field email to author"
    )


def test_lints_on_sqlite(sqlite: LintDatabase) -> None:
    report = lint(sqlite)
    assert found(report) == COMMON
    check_common(report)
    assert report["summary"] == (
        "4 migration(s) to apply on 'default' (sqlite): needs restore (2 irreversible; "
        "7 backward-incompatible; 2 data-loss; 2 expand-contract)."
    )
    failing = sqlite.manage("migrationlint", "--fail-on", "irreversible", check=False)
    assert failing.returncode == 1
    assert failing.stderr == "CommandError: 2 finding(s) of kind irreversible.\n"
    # The whole plan (contrib, django_cd, waffle, testapp and lintapp's four) as Django
    # itself lists it. The models the others create are new, so only lintapp's changes
    # are reported.
    plan = sqlite.manage("showmigrations", "--plan").stdout.splitlines()
    pending = sum(line.startswith("[ ]") for line in plan)
    assert pending > 4
    assert failing.stdout.splitlines()[-1] == report["summary"].replace(
        "4 migration", f"{pending} migration"
    )
    assert sqlite.manage("migrationlint", "--fail-on", "locking").returncode == 0
    unknown = sqlite.manage("migrationlint", "lintapp", "0009_nope", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "CommandError: lintapp.0009_nope is not a migration. manage.py showmigrations lintapp "
        "lists them.\n"
    )


def test_lints_on_postgresql(postgres: LintDatabase) -> None:
    report = lint(postgres)
    assert found(report) == sorted(COMMON + POSTGRES_ONLY, key=lambda f: (f[0], f[1]))
    check_common(report)
    assert report["summary"] == (
        "4 migration(s) to apply on 'default' (postgresql): needs restore (2 irreversible; "
        "8 backward-incompatible; 2 data-loss; 2 expand-contract; 1 locking)."
    )


STATE = """
import json
from django_cd.migration_version import applied_state
print(json.dumps(applied_state().to_dict()))
"""

ROLLBACK = """
import json, os
from django_cd.migration_version import (
    AppliedState, migrate_arguments, migrate_targets, pending_plan, rollback_plan,
)
from django_cd.migration_version.plan import executor
state = AppliedState.from_dict(json.loads(os.environ["STATE"]))
targets = migrate_targets(state, executor().loader.graph)
print(json.dumps({
    "rollback": rollback_plan(state).to_dict(),
    "arguments": migrate_arguments(targets),
    "forward_reversible": pending_plan().reversible,
}))
"""


@pytest.mark.parametrize("vendor", ["sqlite", "postgres"])
def test_deploy_records_state_and_migrates_back(vendor: str, request: Any) -> None:
    database: LintDatabase = request.getfixturevalue(vendor)
    database.manage("migrate", "lintapp", "0001_initial")
    before = database.python(STATE)
    assert before == {"database": "default", "applied": [["lintapp", "0001_initial"]]}

    database.manage("migrate", "lintapp", "0003_rename_and_types")
    answer = database.python(ROLLBACK, STATE=json.dumps(before))
    assert [(s["name"], s["backwards"]) for s in answer["rollback"]["steps"]] == [
        ("0003_rename_and_types", True),
        ("0002_author_email", True),
    ]
    assert answer["rollback"]["reversible"] is True
    assert answer["forward_reversible"] is False  # 0004_data is still ahead
    assert ["lintapp", "0001_initial"] in answer["arguments"]
    assert ["auth", "zero"] in answer["arguments"]

    for app, target in answer["arguments"]:
        database.manage("migrate", app, target)
    assert database.python(STATE) == before
