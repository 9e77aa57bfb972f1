"""README.md's quick start, followed literally on a stock ``django-admin startproject``
project (see ``tests/quickstart_support.py`` for the only substitutions), and the same
path for a project whose settings read ``os.environ`` and whose deploy needs a step
of its own. Real git, real gunicorn on loopback, real HTTP."""

from __future__ import annotations

import ast
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.quickstart_support import (
    FILL,
    Browser,
    QuickStart,
    build_wheel,
    commands,
    env_example,
    hand_edits,
    new_password,
    port_range_lock,
)

SERVES = re.compile(r"(http://127\.0\.0\.1:\d+)\S* serves (\S+)")


@pytest.fixture(scope="module")
def checkout_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def quick(tmp_path: Path, checkout_wheel: Path) -> Iterator[QuickStart]:
    project = QuickStart(tmp_path, checkout_wheel)
    with port_range_lock():
        try:
            yield project
        finally:
            project.stop_servers()


def snapshot(quick: QuickStart) -> dict[Path, bytes]:
    files = [p for p in quick.project.rglob("*") if p.is_file() and ".git" not in p.parts]
    files += [p for p in quick.home.rglob("*") if p.is_file()]
    return {p: p.read_bytes() for p in files if "__pycache__" not in p.parts}


def served(output: str) -> tuple[str, str]:
    match = SERVES.search(output)
    assert match, output
    return match.group(1), match.group(2)


def test_readme_asks_for_no_hand_edit_beyond_cdinit_and_env_file() -> None:
    # The measure of issue 9: edits by hand from startproject to a first deploy.
    assert hand_edits() == []
    steps = commands()
    assert steps.count(FILL) == 1
    assert "python -m django_cd cdinit --write" in steps
    assert steps.index(FILL) < steps.index("python manage.py deploy --env=staging")


def test_stock_project_follows_the_readme(quick: QuickStart) -> None:
    quick.startproject()
    example = env_example()
    password = new_password()
    browser: Browser | None = None
    releases: list[str] = []
    for step in commands():
        if step == FILL:
            names = quick.fill_env_file(example)
            # The README's example and the template cdinit wrote name the same variables.
            assert names == list(example)
            continue
        before = snapshot(quick)
        result = quick.run(step, DJANGO_SUPERUSER_PASSWORD=password)
        output = result.stdout + result.stderr
        if step == "python -m django_cd cdinit":
            assert snapshot(quick) == before, "cdinit without --write changed a file"
            assert "+    'django_cd',\n" in output
            assert "+    'django_cd.middleware.ReleaseHeaderMiddleware',\n" in output
        elif step == "python -m django_cd cdinit --write":
            assert quick.env_file().stat().st_mode & 0o777 == 0o600
            written = snapshot(quick)
            again = quick.run("python manage.py cdinit --write")
            assert "Nothing to do: mysite is set up for django-cd." in again.stdout
            assert snapshot(quick) == written
        elif step.startswith("python manage.py deploy"):
            url, release = served(output)
            status, headers, _ = Browser(url).request("/admin/")
            assert (status, headers["X-Release"]) == (302, release)
            releases.append(release)
            if browser is None:
                # Migrations pending: the database is backed up first (dbbackup, from the
                # backup extra the README installs), into shared/.
                assert re.search(r"^  backup +ok .* \S+/staging/shared/backups/", output, re.M)
                continue
            # A later deploy: the session written through the site and the user stay.
            assert release != releases[0]
            status, headers, _ = browser.request("/admin/")
            assert (status, headers["X-Release"]) == (200, release)
            assert Browser(url).log_in("admin", password)[0] == 302
        elif "createsuperuser" in step:
            browser = Browser(url)
            status, headers = browser.log_in("admin", password)
            assert (status, headers["Location"]) == (302, "/admin/")
            assert browser.request("/admin/")[0] == 200
        elif step.startswith("python manage.py rollback"):
            assert browser is not None
            status, headers, _ = browser.request("/admin/")
            assert (status, headers["X-Release"]) == (200, releases[0])
        elif step.startswith("python manage.py server stop"):
            with pytest.raises(urllib.error.URLError):
                urllib.request.urlopen(url + "/admin/", timeout=5)
    assert len(releases) == 2
    database = quick.home / "deploys" / "mysite" / "staging" / "shared" / "db.sqlite3"
    assert database.is_file()
    assert not (quick.project / "db.sqlite3").exists()


ENVIRON_SETTINGS = """\
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")
BANNER_TEXT = os.getenv("BANNER_TEXT", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "pages",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "mysite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", BASE_DIR / "db.sqlite3"),
    }
}
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
BANNER_FILE = BASE_DIR / "generated" / "banner.txt"
"""

BANNER_COMMAND = """\
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def handle(self, **options):
        settings.BANNER_FILE.parent.mkdir(exist_ok=True)
        settings.BANNER_FILE.write_text(f"banner: {settings.BANNER_TEXT}")
"""

PAGES_VIEWS = """\
from django.conf import settings
from django.http import HttpResponse


def banner(request):
    return HttpResponse(settings.BANNER_FILE.read_text(), content_type="text/plain")
"""

URLS = """\
from django.contrib import admin
from django.urls import path

from pages.views import banner

urlpatterns = [path("admin/", admin.site.urls), path("banner/", banner)]
"""

STEP = '"steps": [{"name": "banner", "after": "collectstatic", "run": "manage.py build_banner"}],'


def write_environ_project(quick: QuickStart) -> None:
    """A project that reads os.environ only, whose deploy must run build_banner."""
    quick.project.mkdir()
    quick.sh("django-admin startproject mysite .")
    (quick.project / "mysite" / "settings.py").write_text(ENVIRON_SETTINGS)
    (quick.project / "mysite" / "urls.py").write_text(URLS)
    commands_dir = quick.project / "pages" / "management" / "commands"
    commands_dir.mkdir(parents=True)
    for package in ("pages", "pages/management", "pages/management/commands"):
        (quick.project / package / "__init__.py").write_text("")
    (commands_dir / "build_banner.py").write_text(BANNER_COMMAND)
    (quick.project / "pages" / "views.py").write_text(PAGES_VIEWS)
    quick.git_init()


def other_statements(source: str) -> list[str]:
    """The module's statements except assignments of what the scenario may edit."""
    allowed = {"INSTALLED_APPS", "MIDDLEWARE", "DJANGO_CD"}
    kept = []
    for node in ast.parse(source).body:
        names = {t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
        if not names & allowed:
            kept.append(ast.dump(node))
    return kept


def test_environ_project_with_a_deploy_step_of_its_own(quick: QuickStart) -> None:
    write_environ_project(quick)
    settings = quick.project / "mysite" / "settings.py"
    # The developer's shell holds what their settings require, as for runserver.
    quick.shell["DJANGO_SECRET_KEY"] = "a-local-development-key"
    # --no-backup: with backups on, cdinit would also add DBBACKUP_CONNECTOR_MAPPING (SQLite
    # backups as file copies), a setting beyond the three this scenario may change.
    quick.run("python -m django_cd cdinit --write --no-backup")
    text = settings.read_text()
    assert '"backup": "never",' in text
    assert other_statements(text) == other_statements(ENVIRON_SETTINGS)
    # The project's own step: the one edit of DJANGO_CD.
    settings.write_text(
        text.replace('"manage": "manage.py",', f'"manage": "manage.py",\n            {STEP}')
    )
    assert quick.run("python manage.py cdinit --write").stdout.count("Nothing to do") == 1

    env_file = quick.env_file()
    template = env_file.read_text()
    names = re.findall(r"^(\w+)=$", template, re.M)
    assert names == [
        "DJANGO_SECRET_KEY",
        "DJANGO_DEBUG",
        "DJANGO_ALLOWED_HOSTS",
        "BANNER_TEXT",
        "DJANGO_DB_PATH",
    ]
    shared = env_file.parent
    assert f"# DJANGO_DB_PATH: outside the release, e.g. {shared}/db.sqlite3" in template
    values = {
        "DJANGO_SECRET_KEY": new_password() * 3,
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BANNER_TEXT": "hello from shared/.env",
        "DJANGO_DB_PATH": f"{shared}/db.sqlite3",
    }
    env_file.write_text(
        re.sub(r"^(\w+)=$", lambda m: f"{m.group(1)}={values[m.group(1)]}", template, flags=re.M)
    )
    quick.run('git add -A && git commit -m "Deploy with django-cd"')

    result = quick.run("python manage.py deploy --env=staging")
    assert re.search(r"^  banner +ok ", result.stdout, re.M), result.stdout
    url, release = served(result.stdout)
    status, headers, body = Browser(url).request("/banner/")
    assert (status, headers["X-Release"], body) == (200, release, "banner: hello from shared/.env")
    assert (shared / "db.sqlite3").is_file()
    assert not (quick.project / "db.sqlite3").exists()
