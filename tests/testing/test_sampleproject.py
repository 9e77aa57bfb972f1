"""The sample project's own tests, run by pipeline as CI and the demo run them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.tempproject import REPO_ROOT, Run

SAMPLE = REPO_ROOT / "sampleproject"


def manage(*args: str, settings: str = "settings.test", env: dict[str, str] | None = None) -> Run:
    # Only the caller's env names a deployed site; one set in the shell must not leak in.
    inherited = {k: v for k, v in os.environ.items() if k != "SMOKE_BASE_URL"}
    full_env = {**inherited, "DJANGO_SETTINGS_MODULE": settings, **(env or {})}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=SAMPLE,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize(("pipeline", "ran"), [("unit", 5), ("functional", 4)])
def test_sample_pipelines(pipeline, ran):
    run = manage("test", f"--pipeline={pipeline}")
    assert run.returncode == 0, run.output
    assert run.ran == ran
    assert (
        f"Pipeline {pipeline}: passed ({ran} run, 0 failures, 0 errors, 0 skipped)" in run.stdout
    )


def test_sample_pipeline_list():
    run = manage("test", "--list-pipelines")
    assert run.returncode == 0, run.output
    assert run.stdout.splitlines()[1:5] == [
        "unit            5  (default: tests without @pipeline)",
        "functional      4",
        "smoke           3",
        "slow            0",
    ]


def test_sample_smoke_without_a_site_is_not_green():
    run = manage("test", "--pipeline=smoke")
    assert run.returncode == 1
    assert "(skipped=3)" in run.stderr  # Python 3.12+ counts class-level skips apart
    assert "CommandError: The selection ran no test: all 3 selected tests were skipped." in (
        run.stderr
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def staging_site(tmp_path):
    """The sample project served by a real gunicorn with the staging settings."""
    env = {
        "DJANGO_SECRET_KEY": "smoke-" + "s3cr3t" * 10,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'staging.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        done = manage(*command, settings="settings.staging", env=env)
        assert done.returncode == 0, done.output
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "notesboard.wsgi",
        ],
        cwd=SAMPLE,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings.staging", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sample_smoke_against_a_running_site(staging_site):
    run = manage("test", "--pipeline=smoke", env={"SMOKE_BASE_URL": staging_site})
    assert run.returncode == 0, run.output
    assert run.ran == 3
    assert "Pipeline smoke: passed (3 run, 0 failures, 0 errors, 0 skipped)" in run.stdout
