"""version.txt parsing, conflict parsing and dependency rewriting (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from django_cd.migration_version.errors import MigrationVersionError
from django_cd.migration_version.files import (
    Status,
    parse_conflict,
    read_version,
    write_version,
)
from django_cd.migration_version.sourcefix import rename_references


def version_at(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "version.txt"
    path.write_bytes(content)
    return path


def test_write_then_read(tmp_path: Path) -> None:
    path = tmp_path / "version.txt"
    write_version(path, "0002_note_author")
    assert path.read_bytes() == b"0002_note_author\n"
    version = read_version(path)
    assert (version.status, version.name) == (Status.OK, "0002_note_author")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    ("content", "status", "detail"),
    [
        (b"0001_initial\n0002_more\n", Status.NOT_ONE_NAME, ""),
        (b"\n\n", Status.NOT_ONE_NAME, ""),
        (b"\x89PNG\r\n\x1a\n\x00\x00", Status.UNREADABLE, "it is binary, not text"),
        (b"0001_\xff\xfe\n", Status.UNREADABLE, "it is not UTF-8 text"),
        (b"x" * 5000, Status.UNREADABLE, "it is binary, not text"),
        (b"<<<<<<< HEAD\n0002_a\n=======\n0002_b\n>>>>>>> b\n", Status.CONFLICT, ""),
    ],
)
def test_read_states(tmp_path: Path, content: bytes, status: Status, detail: str) -> None:
    version = read_version(version_at(tmp_path, content))
    assert (version.status, version.name, version.detail) == (status, None, detail)


def test_missing_and_unreadable(tmp_path: Path) -> None:
    assert read_version(tmp_path / "version.txt").status is Status.MISSING
    directory = tmp_path / "version.txt"
    directory.mkdir()
    version = read_version(directory)
    assert (version.status, version.detail) == (Status.UNREADABLE, "Is a directory")


def test_parse_diff3_conflict(tmp_path: Path) -> None:
    content = (
        b"<<<<<<< HEAD\n0002_theirs\n||||||| merged common ancestors\n0001_initial\n"
        b"=======\n0003_ours\n>>>>>>> feature\n"
    )
    conflict = parse_conflict(read_version(version_at(tmp_path, content)))
    assert (conflict.current, conflict.incoming) == ("0002_theirs", "0003_ours")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"<<<<<<< HEAD\n0002_a\n0002_c\n=======\n0003_b\n>>>>>>> f\n",
            "The current side of the conflict in {path} holds 2 lines, not one migration name.",
        ),
        (
            b"<<<<<<< HEAD\n0002_a\n=======\n>>>>>>> f\n",
            "The incoming side of the conflict in {path} holds 0 lines, not one migration name.",
        ),
        (
            b"0001_initial\n<<<<<<< HEAD\n0002_a\n=======\n0003_b\n>>>>>>> f\n",
            "{path} has '0001_initial' outside the conflict markers.",
        ),
    ],
)
def test_bad_conflicts(tmp_path: Path, content: bytes, message: str) -> None:
    path = version_at(tmp_path, content)
    with pytest.raises(MigrationVersionError) as raised:
        parse_conflict(read_version(path))
    assert str(raised.value).startswith(message.format(path=path))


MIGRATION = '''\
from django.db import migrations


class Migration(migrations.Migration):
    """Follows ('shop', '0002_sku') in the docstring: not a reference."""

    dependencies = [
        ("shop", "0002_sku"),
        ('orders', '0002_sku'),
        migrations.swappable_dependency("auth.User"),
    ]
    run_before: list = [("shop", "0003_stock")]

    operations = [migrations.RunSQL("SELECT '0002_sku'", reverse_sql="")]
'''


def test_rename_references_only_in_dependency_tuples() -> None:
    text, renamed = rename_references(
        MIGRATION, "shop", {"0002_sku": "0004_sku", "0003_stock": "0005_stock", "0009": "x"}
    )
    assert renamed == {"0002_sku", "0003_stock"}
    assert text == (
        MIGRATION.replace('("shop", "0002_sku")', '("shop", "0004_sku")').replace(
            '("shop", "0003_stock")', '("shop", "0005_stock")'
        )
    )
    assert "('orders', '0002_sku')" in text
    assert "Follows ('shop', '0002_sku')" in text


def test_rename_references_keeps_quote_style() -> None:
    source = "class Migration:\n    dependencies = [('shop', '0002_é')]\n"
    text, renamed = rename_references(source, "shop", {"0002_é": "0003_é"})
    assert (text, renamed) == (
        "class Migration:\n    dependencies = [('shop', '0003_é')]\n",
        {"0002_é"},
    )
