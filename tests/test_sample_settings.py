"""The sample project's split settings, run for real in subprocesses."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MANAGE = REPO / "sampleproject" / "manage.py"


def manage(settings_module: str, *args: str, extra_env: dict[str, str] | None = None):
    environ = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": settings_module,
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def live_env(tmp_path):
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": f"sqlite:///{tmp_path}/live.sqlite3",
        "DJANGO_ALLOWED_HOSTS": "notes.example.com",
        "DJANGO_LOG_DIR": str(tmp_path / "log"),
    }


def test_live_passes_check_deploy(live_env):
    result = manage(
        "settings.live", "check", "--deploy", "--fail-level", "WARNING", extra_env=live_env
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_live_without_secrets_names_all_three():
    result = manage("settings.live", "check", "--deploy")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"):
        assert f"{name} is not set" in result.stderr
    assert result.stderr.startswith("Settings settings.live cannot load: 3 setting(s) missing")


def test_live_with_short_key_fails_without_printing_it(live_env):
    live_env["DJANGO_SECRET_KEY"] = "too-short-" + secrets.token_hex(8)
    result = manage("settings.live", "check", extra_env=live_env)
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY is shorter than 50 characters" in result.stderr
    assert live_env["DJANGO_SECRET_KEY"] not in result.stderr + result.stdout


def test_live_logs_to_console_and_file(live_env, tmp_path):
    code = (
        "import logging; from django.conf import settings; "
        "logging.getLogger('notes').warning('board started'); "
        "print(sorted(settings.LOGGING['handlers']))"
    )
    result = manage(
        "settings.live",
        "shell",
        "--no-imports",
        "-c",
        code,
        extra_env={**live_env, "DJANGO_LOG_LEVEL": "INFO"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['console', 'file']"
    assert "board started" in result.stderr
    assert "board started" in (tmp_path / "log" / "django.log").read_text()


def test_staging_reads_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(60)}\n"
        f"DATABASE_URL=sqlite:///{tmp_path}/staging.sqlite3\n"
        "DJANGO_ALLOWED_HOSTS=staging.example.com\n"
        "DJANGO_LOG_LEVEL=WARNING\n"
    )
    code = "from django.conf import settings; print(settings.ALLOWED_HOSTS, settings.DEBUG)"
    result = manage(
        "settings.staging",
        "shell",
        "--no-imports",
        "-c",
        code,
        extra_env={"DJANGO_ENV_FILE": str(env_file)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['staging.example.com'] False"


def test_dev_needs_no_secrets():
    result = manage("settings.dev", "check")
    assert result.returncode == 0, result.stderr
