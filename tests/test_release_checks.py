"""Checks of the settings a release runs with (django_cd.release_checks, E150-E154)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from django_cd.release_checks import check_release_settings, needs
from tests.conftest import Deployed
from tests.pipeline_support import current, get, history

# The checks read settings.DATABASES; these tests never touch a database.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")

MIDDLEWARE = ["django_cd.middleware.ReleaseHeaderMiddleware", "x.Other"]


def ids(release: Path, monkeypatch: pytest.MonkeyPatch, needs: str = "") -> list[str]:
    monkeypatch.setenv("DJANGO_CD_RELEASE_DIR", str(release))
    monkeypatch.setenv("DJANGO_CD_NEEDS", needs)
    return [message.id or "" for message in check_release_settings()]


def sqlite(name: object) -> dict[str, dict[str, object]]:
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name}}


def test_silent_outside_a_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DJANGO_CD_RELEASE_DIR", raising=False)
    with override_settings(DATABASES=sqlite(tmp_path / "db.sqlite3"), MIDDLEWARE=[]):
        assert check_release_settings() == []


def test_data_inside_the_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release, shared = tmp_path / "releases" / "1", tmp_path / "shared"
    release.mkdir(parents=True)
    with override_settings(
        DATABASES=sqlite(release / "db.sqlite3"),
        MEDIA_ROOT=release / "media",
        MIDDLEWARE=MIDDLEWARE,
    ):
        assert ids(release, monkeypatch) == ["django_cd.E150", "django_cd.E151"]
    # A relative path is relative to where the release's commands run: the release.
    monkeypatch.chdir(release)
    with override_settings(DATABASES=sqlite("db.sqlite3"), MEDIA_ROOT="", MIDDLEWARE=MIDDLEWARE):
        assert ids(release, monkeypatch) == ["django_cd.E150"]
    with override_settings(
        DATABASES=sqlite(shared / "db.sqlite3"), MEDIA_ROOT=shared / "media", MIDDLEWARE=MIDDLEWARE
    ):
        assert ids(release, monkeypatch) == []
    with override_settings(DATABASES=sqlite(":memory:"), MIDDLEWARE=MIDDLEWARE):
        assert ids(release, monkeypatch) == []


def test_release_header_middleware_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_CD_RELEASE_DIR", str(tmp_path))
    with override_settings(DATABASES={}, MIDDLEWARE=MIDDLEWARE[::-1]):
        [message] = check_release_settings()
    assert message.id == "django_cd.E152"
    assert "ReleaseHeaderMiddleware is not first" in message.msg
    with override_settings(DATABASES={}, MIDDLEWARE=["x.Other"]):
        [message] = check_release_settings()
    assert "ReleaseHeaderMiddleware is not in MIDDLEWARE" in message.msg


def test_what_the_deploy_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = ["django.contrib.contenttypes", "django.contrib.auth", "django_cd"]
    with override_settings(
        DATABASES={}, MIDDLEWARE=MIDDLEWARE, STATIC_ROOT=None, INSTALLED_APPS=installed
    ):
        assert ids(tmp_path, monkeypatch, "collectstatic,dbbackup") == [
            "django_cd.E153",
            "django_cd.E154",
        ]
        assert ids(tmp_path, monkeypatch, "") == []
    with override_settings(
        DATABASES={},
        MIDDLEWARE=MIDDLEWARE,
        STATIC_ROOT=tmp_path,
        INSTALLED_APPS=[*installed, "dbbackup"],
    ):
        assert ids(tmp_path, monkeypatch, "collectstatic,dbbackup") == []


def test_needs_follows_the_environment() -> None:
    from django_cd import conf

    env = conf.Environment(
        "staging", "settings.staging", "/srv/x", ("local",), (), conf.Server("none"), "parallel",
        "auto", "manage.py", "requirements.txt", None, (), (), None, (), (),
    )  # fmt: skip
    assert needs(env) == "collectstatic,dbbackup"
    skipping = conf.Environment(
        **{**env.__dict__, "backup": "never", "steps": (conf.Step("collectstatic", skip=True),)}
    )
    assert needs(skipping) == ""


def test_a_database_inside_the_release_is_refused_before_anything_changes(
    staging: Deployed,
) -> None:
    """The stock project's trap: SQLite next to manage.py, so inside every release."""
    project = staging.project
    env_file = project.root("staging") / "shared" / ".env"
    env_file.write_text(
        "\n".join(
            line if not line.startswith("DATABASE_URL=") else "DATABASE_URL=sqlite:///db.sqlite3"
            for line in env_file.read_text().splitlines()
        )
        + "\n"
    )
    before = len(history(project))
    result = project.manage("deploy", "--env=staging")
    assert result.returncode == 1
    assert "django_cd.E150" in result.stdout + result.stderr
    assert "is inside the release" in result.stdout + result.stderr
    assert current(project) == staging.release
    assert get(project.url("staging"))[:2] == (200, staging.release)
    assert [entry["status"] for entry in history(project)[before:]] == ["refused"]


def test_settings_and_wsgi_modules_must_import_from_the_release_layout(
    tmp_path: Path,
) -> None:
    """The README's example values used to pass check and fail at deploy (E155)."""
    from django_cd.checks import check_modules_in_repository

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "myproject" / "settings").mkdir(parents=True)
    (repo / "myproject" / "settings" / "staging.py").write_text("")
    (repo / "myproject" / "wsgi.py").write_text("")
    (repo / "manage.py").write_text("")

    def errors(settings_module: str, wsgi: str, manage: str = "manage.py") -> list[str]:
        env = {
            "settings": settings_module,
            "root": str(tmp_path / "deploy"),
            "manage": manage,
            "server": {"type": "gunicorn", "bind": "127.0.0.1:8001", "wsgi": wsgi},
        }
        config = {"REPOSITORY": str(repo), "ENVIRONMENTS": {"staging": env}}
        with override_settings(DJANGO_CD=config):
            return [m.msg for m in check_modules_in_repository()]

    assert errors("myproject.settings.staging", "myproject.wsgi") == []
    assert errors("myproject.settings.staging", "myproject.wsgi:application") == []
    [message] = errors("settings.staging", "myproject.wsgi")
    assert message == (
        "Environment 'staging': the settings module 'settings.staging' will not import in a "
        f"release: there is no {repo}/settings/staging.py, and it is not an installed package."
    )
    [message] = errors("myproject.settings.staging", "notes.wsgi")
    assert "the server wsgi module 'notes.wsgi' will not import" in message
    # manage.py in a subdirectory: modules import from there, or from the root.
    (repo / "src" / "myproject").mkdir(parents=True)
    (repo / "src" / "myproject" / "wsgi.py").write_text("")
    assert errors("myproject.settings.staging", "myproject.wsgi", "src/manage.py") == []
    # An installed package (django itself here) is fine.
    assert errors("myproject.settings.staging", "django.core.wsgi", "src/manage.py") == []
