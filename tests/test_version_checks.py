"""System checks and command errors on the test project's own apps (in process)."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_cd.migration_version.checks import check_version_files
from django_cd.migration_version.firstparty import VersionedApp
from django_cd.migration_version.versions import load_graph, version_problems
from django_cd.project import is_site_package

TESTAPP_DIR = Path(__file__).parent / "testapp" / "migrations"


def problems_for(tmp_path: Path, content: bytes | None) -> list[tuple[str, str, str]]:
    """Check a version.txt in ``tmp_path`` against testapp's real migration graph."""
    if content is not None:
        (tmp_path / "version.txt").write_bytes(content)
    app = VersionedApp("testapp", tmp_path)
    return [(p.id, p.msg, p.hint) for p in version_problems(app, load_graph())]


def test_the_test_project_is_clean() -> None:
    assert check_version_files() == []
    out = StringIO()
    call_command("migrationversion", "--check", stdout=out)
    assert out.getvalue() == "Every version.txt names its app's leaf.\n"


def test_missing(tmp_path: Path) -> None:
    assert problems_for(tmp_path, None) == [
        (
            "django_cd.E030",
            f"testapp: {tmp_path / 'version.txt'} does not exist.",
            "Run: manage.py migrationversion",
        )
    ]


def test_conflict_markers(tmp_path: Path) -> None:
    content = b"<<<<<<< HEAD\n0001_initial\n=======\n0002_x\n>>>>>>> feature\n"
    assert problems_for(tmp_path, content) == [
        (
            "django_cd.E031",
            f"testapp: {tmp_path / 'version.txt'} has git conflict markers.",
            "Run: manage.py migrationversion --rebase testapp",
        )
    ]


@pytest.mark.parametrize(
    ("content", "id_", "msg"),
    [
        (
            b"0001_initial\n0001_initial\n",
            "E032",
            "holds 2 lines; it must hold one migration name.",
        ),
        (b"", "E032", "holds 0 lines; it must hold one migration name."),
        (b"\x00\x01", "E033", "cannot be read: it is binary, not text."),
        (
            b"0002_gone\n",
            "E034",
            "names '0002_gone', which is not a migration of the app (the leaf is '0001_initial').",
        ),
    ],
)
def test_bad_content(tmp_path: Path, content: bytes, id_: str, msg: str) -> None:
    assert problems_for(tmp_path, content) == [
        (
            f"django_cd.{id_}",
            f"testapp: {tmp_path / 'version.txt'} {msg}",
            "Run: manage.py migrationversion --recreate testapp",
        )
    ]


def test_first_party_setting() -> None:
    config = {"FIRST_PARTY_APPS": ["nosuch", "auth", "django_cd"]}
    with override_settings(DJANGO_CD=config):
        errors = check_version_files()
    assert [(e.id, e.msg) for e in errors] == [
        (
            "django_cd.E037",
            "DJANGO_CD['FIRST_PARTY_APPS'] names 'nosuch', which is not an installed app label.",
        ),
        (
            "django_cd.E038",
            "DJANGO_CD['FIRST_PARTY_APPS'] names 'auth', which is installed in site-packages; "
            "django-cd never writes version files there.",
        ),
    ]


def test_site_packages_are_never_first_party() -> None:
    import django

    assert is_site_package(django.__file__)
    assert not is_site_package(__file__)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nosuch"],
            "No installed app has the label 'nosuch'. Use an app label from INSTALLED_APPS, "
            "e.g. 'notes'.",
        ),
        (["--rebase", "auth"], "App 'auth' is installed in site-packages ("),
        (
            ["django_cd"],
            "App 'django_cd' is not first-party: its code ({cd}) is not under BASE_DIR "
            "({tests}). Add 'django_cd' to DJANGO_CD['FIRST_PARTY_APPS'] if django-cd should "
            "keep its version.txt.",
        ),
        (
            ["--rebase", "testapp", "testapp"],
            "--rebase takes one app label; give no other labels.",
        ),
    ],
)
def test_command_refuses(args: list[str], message: str) -> None:
    import django_cd

    cd = Path(django_cd.__file__).parent
    expected = message.format(cd=cd, tests=Path(__file__).parent)
    with pytest.raises(CommandError) as raised:
        call_command("migrationversion", *args, stdout=StringIO())
    assert str(raised.value).startswith(expected)


def test_no_migrations_package() -> None:
    with (
        override_settings(MIGRATION_MODULES={"testapp": "tests.testapp.nomigrations"}),
        pytest.raises(CommandError) as raised,
    ):
        call_command("migrationversion", "testapp", stdout=StringIO())
    assert str(raised.value) == (
        "App 'testapp' has no migrations package (tests.testapp.nomigrations). "
        "Create its first migration with: manage.py makemigrations testapp"
    )


def test_create_is_idempotent_and_json() -> None:
    out = StringIO()
    call_command("migrationversion", stdout=out)
    assert out.getvalue() == "Every version.txt already exists.\n"
    out = StringIO()
    call_command("migrationversion", "--check", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"problems": []}
    assert (TESTAPP_DIR / "version.txt").read_text() == "0001_initial\n"


def test_every_version_check_id_is_documented_once_in_range() -> None:
    package = Path(__file__).parent.parent / "django_cd" / "migration_version"
    used = set()
    for source in package.glob("*.py"):
        used |= set(re.findall(r'"(?:django_cd\.)?(E0\d\d)"', source.read_text()))
    doc = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    headings = re.findall(r"^## django_cd\.(E\d{3})", doc, re.MULTILINE)
    assert len(headings) == len(set(headings)), "an id is documented twice"
    assert sorted(used) == [f"E0{n}" for n in range(30, 39)]
    assert used <= set(headings)
