"""``manage.py cdplan``: the planner the deploy engine reads the database with
(``migration_version.plan.database_report``), on a real tiny project and database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.miniproject import MiniProject

MODELS = """\
from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=100)
{fields}"""

IRREVERSIBLE = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("books", "0002_book_pages")]
    operations = [migrations.RunPython(lambda apps, schema_editor: None)]
"""


@pytest.fixture
def project(tmp_path: Path) -> MiniProject:
    mini = MiniProject.create(tmp_path / "proj", {"books": MODELS.format(fields="")})
    mini.manage("makemigrations", "books")
    mini.manage("migrate")
    return mini


def report(project: MiniProject, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(project.manage("cdplan", *args).stdout.splitlines()[-1])
    return data


def test_an_up_to_date_database(project: MiniProject) -> None:
    data = report(project)
    assert data["state"]["books"] == "0001_initial"
    assert data["leaves"]["books"] == "0001_initial"
    assert data["pending"] == [] and data["unknown"] == [] and data["backward"] == []
    assert data["lints"] is None


def test_pending_migrations_their_lints_and_the_way_back(project: MiniProject) -> None:
    project.write_models(
        "books", MODELS.format(fields="    pages = models.IntegerField(default=0)\n")
    )
    project.manage("makemigrations", "books", "--name", "book_pages")
    (project.root / "books" / "migrations" / "0003_irreversible.py").write_text(IRREVERSIBLE)
    project.manage("migrationversion", "--recreate", "books")
    data = report(project, "--lint")
    assert data["pending"] == ["books.0002_book_pages", "books.0003_irreversible"]
    assert data["leaves"]["books"] == "0003_irreversible"
    assert data["lints"] is not None and "summary" in data["lints"]
    # Once applied, the way back to 0001 names what cannot be unapplied.
    project.manage("migrate")
    # A target names every app (a manifest's state): the others stay where they are.
    target = {**report(project)["state"], "books": "0001_initial"}
    back = report(project, "--target", json.dumps(target))
    assert back["state"]["books"] == "0003_irreversible"
    assert back["backward"] == [
        {"name": "books.0003_irreversible", "irreversible": ["RunPython"]},
        {"name": "books.0002_book_pages", "irreversible": []},
    ]
    zero = report(project, "--target", json.dumps({**target, "books": None}))
    assert [m["name"] for m in zero["backward"]] == [
        "books.0003_irreversible",
        "books.0002_book_pages",
        "books.0001_initial",
    ]


def test_applied_migrations_the_code_does_not_know(project: MiniProject) -> None:
    with sqlite3.connect(project.root / "db.sqlite3") as connection:
        connection.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('books', '0002_from_a_newer_release', '2026-01-01')"
        )
    data = report(project)
    assert data["unknown"] == ["books.0002_from_a_newer_release"]
    assert data["state"]["books"] == "0001_initial"


def test_a_target_that_is_not_json_is_refused(project: MiniProject) -> None:
    result = project.manage("cdplan", "--target", "{nope", check=False)
    assert result.returncode == 1
    assert "--target is not JSON" in result.stderr
