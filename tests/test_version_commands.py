"""makemigrations, squashmigrations and migrationversion on a real tiny project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.miniproject import MiniProject
from tests.test_version_rebase import snapshot

MODELS = """\
from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=50)
{fields}
"""


@pytest.fixture
def project(tmp_path: Path) -> MiniProject:
    mini = MiniProject.create(tmp_path / "proj", {"books": MODELS.format(fields=""), "plain": ""})
    mini.manage("makemigrations", "books")
    return mini


def add_field(project: MiniProject, line: str) -> None:
    models = (project.root / "books" / "models.py").read_text()
    project.write_models("books", models + f"    {line}\n")


def test_makemigrations_keeps_version_current(project: MiniProject) -> None:
    assert project.version("books") == "0001_initial\n"
    assert not (project.root / "plain" / "migrations").exists()

    add_field(project, "pages = models.IntegerField(default=0)")
    before = snapshot(project.root)
    dry = project.manage("makemigrations", "--dry-run").stdout
    assert "books/migrations/0002_book_pages.py" in dry
    assert "version.txt" not in dry
    assert snapshot(project.root) == before

    out = project.manage("makemigrations", "books", "--name", "pages").stdout
    assert out.endswith(f"  {project.root / 'books/migrations/version.txt'}: 0002_pages\n")
    assert project.version("books") == "0002_pages\n"

    project.manage("makemigrations", "books", "--empty")
    assert project.migrations("books")[-1] == "0003_auto_" + project.migrations("books")[-1][10:]
    assert project.version("books") == project.migrations("books")[-1] + "\n"

    add_field(project, "isbn = models.CharField(max_length=13, default='')")
    project.manage("makemigrations", "books", "--name", "isbn")
    add_field(project, "year = models.IntegerField(default=2000)")
    project.manage("makemigrations", "books", "--update", "--name", "isbn_year")
    assert project.migrations("books")[-1] == "0004_isbn_year"
    assert not (project.root / "books/migrations/0004_isbn.py").exists()
    assert project.version("books") == "0004_isbn_year\n"
    assert project.manage("migrationversion", "--check").returncode == 0


def test_merge_of_two_leaves(project: MiniProject) -> None:
    migrations = project.root / "books" / "migrations"
    for name in ("0002_left", "0002_right"):
        (migrations / f"{name}.py").write_text(
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            "    dependencies = [('books', '0001_initial')]\n"
            "    operations = []\n"
        )
    check = project.manage("check", check=False)
    assert check.returncode == 1
    assert "books: the migration graph has 2 leaf nodes (0002_left, 0002_right)." in check.stderr
    assert (
        "HINT: After a git merge, run: manage.py migrationversion --rebase books" in check.stderr
    )
    refused = project.manage("migrationversion", "--recreate", check=False)
    assert refused.returncode == 1
    assert "App 'books' has 2 leaf migrations (0002_left, 0002_right)" in refused.stderr

    # makemigrations runs despite the failing version-file check: it is the fix.
    project.manage("makemigrations", "--merge", "--noinput", "books", "--name", "joined")
    assert project.version("books") == "0003_joined\n"
    assert project.manage("check").returncode == 0


def test_squash_points_at_the_squashed_migration(project: MiniProject) -> None:
    add_field(project, "pages = models.IntegerField(default=0)")
    project.manage("makemigrations", "books")
    out = project.manage("squashmigrations", "books", "0002", "--noinput").stdout
    assert out.endswith(
        f"  {project.root / 'books/migrations/version.txt'}: 0001_squashed_0002_book_pages\n"
    )
    assert project.version("books") == "0001_squashed_0002_book_pages\n"
    assert project.manage("migrationversion", "--check").returncode == 0
    project.manage("migrate")


def test_create_and_recreate(project: MiniProject) -> None:
    version = project.root / "books" / "migrations" / "version.txt"
    version.unlink()
    check = project.manage("migrationversion", "--check", check=False)
    assert check.returncode == 1
    assert check.stdout == (
        f"django_cd.E030: books: {version} does not exist.\n"
        "  HINT: Run: manage.py migrationversion\n"
    )
    assert check.stderr == "CommandError: 1 version file problem(s).\n"
    created = project.manage("migrationversion").stdout
    assert created == f"books: created {version} (0001_initial)\n"

    version.write_bytes(b"\x00binary")
    assert project.manage("migrationversion").stdout == "Every version.txt already exists.\n"
    assert "E033" in project.manage("check", check=False).stderr
    recreated = project.manage("migrationversion", "--recreate").stdout
    assert recreated == f"books: rewrote {version} (0001_initial)\n"


EMPTY_MIGRATION = (
    "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
    "    dependencies = [('books', '0001_initial')]\n    operations = []\n"
)


def test_rebase_when_one_side_already_follows(project: MiniProject) -> None:
    migrations = project.root / "books" / "migrations"
    (migrations / "0002_other.py").write_text(EMPTY_MIGRATION)
    (migrations / "version.txt").write_text(CONFLICT.format(incoming="0002_other"))
    out = project.manage("migrationversion", "--rebase", "books").stdout
    assert out.splitlines()[0] == "books: version.txt now names 0002_other."
    assert project.migrations("books") == ["0001_initial", "0002_other"]
    assert project.version("books") == "0002_other\n"


def test_migration_added_by_hand_is_not_the_leaf(project: MiniProject) -> None:
    migrations = project.root / "books" / "migrations"
    (migrations / "0002_by_hand.py").write_text(EMPTY_MIGRATION)
    check = project.manage("migrationversion", "--check", check=False)
    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        f"django_cd.E035: books: {migrations / 'version.txt'} names '0001_initial', but the "
        "leaf migration is '0002_by_hand'.",
        "  HINT: Run: manage.py migrationversion --recreate books; if a branch added "
        "'0002_by_hand' without updating version.txt, check that both branches' migrations "
        "belong in this order.",
    ]
    migrate = project.manage("migrate", check=False)
    assert migrate.returncode == 1
    assert "django_cd.E035" in migrate.stderr
    project.manage("migrationversion", "--recreate", "books")
    assert project.version("books") == "0002_by_hand\n"
    project.manage("migrate")


CONFLICT = "<<<<<<< HEAD\n0001_initial\n=======\n{incoming}\n>>>>>>> feature\n"


@pytest.mark.parametrize(
    ("args", "version", "message"),
    [
        (
            ["--rebase", "plain"],
            None,
            "App 'plain' has no migrations package (plain.migrations). "
            "Create its first migration with: manage.py makemigrations plain",
        ),
        (
            ["--rebase", "django_cd"],
            None,
            "App 'django_cd' is not first-party: its code (",
        ),
        (
            ["--rebase", "contenttypes"],
            None,
            "App 'contenttypes' is installed in site-packages (",
        ),
        (
            ["--rebase", "books"],
            b"0001_initial\n",
            "{version} has no git conflict markers (it names '0001_initial'), so there is "
            "nothing to rebase.",
        ),
        (
            ["--rebase", "books"],
            b"\x00\x01\x02",
            "{version} cannot be read (it is binary, not text), so its conflict cannot be "
            "resolved.",
        ),
        (
            ["--rebase", "books"],
            CONFLICT.format(incoming="0002_missing").encode(),
            "The incoming side of the conflict in {version} names '0002_missing', but "
            "{migrations}/0002_missing.py is not a migration of the app.",
        ),
        (
            ["--rebase", "books"],
            b"<<<<<<< HEAD\n=======\n0001_initial\n>>>>>>> feature\n",
            "The current side of the conflict in {version} holds 0 lines, not one migration name.",
        ),
        (
            ["--rebase", "books"],
            b"<<<<<<< HEAD\n0002_other\n=======\n0003_joined\n>>>>>>> feature\n",
            # Django's forwards plan visits 0002_mine2 first (a deterministic order).
            "The migrations to renumber are not a straight chain: books.0002_mine depends on "
            "0001_initial, not on 0002_mine2. Order these migrations by hand",
        ),
        (
            ["--rebase", "books"],
            b"<<<<<<< HEAD\n0002_other\n=======\nmine_unnumbered\n>>>>>>> feature\n",
            "books.mine_unnumbered has no number prefix (such as 0003_), so it cannot be "
            "renumbered. Rename it by hand.",
        ),
        (
            ["--rebase", "books", "--database", "nope"],
            b"<<<<<<< HEAD\n0002_other\n=======\n0002_mine\n>>>>>>> feature\n",
            "No database 'nope' in DATABASES. Use one of: default.",
        ),
    ],
)
def test_rebase_refusals_write_nothing(
    project: MiniProject, args: list[str], version: bytes | None, message: str
) -> None:
    migrations = project.root / "books" / "migrations"
    if version is not None:
        (migrations / "version.txt").write_bytes(version)
    for name in ("0002_other", "0002_mine", "0002_mine2", "mine_unnumbered"):
        (migrations / f"{name}.py").write_text(EMPTY_MIGRATION)
    (migrations / "0003_joined.py").write_text(
        EMPTY_MIGRATION.replace(
            "('books', '0001_initial')", "('books', '0002_mine'), ('books', '0002_mine2')"
        )
    )
    before = snapshot(project.root)
    result = project.manage("migrationversion", *args, check=False)
    assert result.returncode == 1
    expected = message.format(version=migrations / "version.txt", migrations=migrations)
    assert result.stderr.startswith(f"CommandError: {expected}")
    assert snapshot(project.root) == before
