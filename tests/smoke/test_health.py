"""The health URL (django-health-check plus django-cd's checks) and ``django_cd.sentry``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, override_settings

from django_cd import sentry
from tests.smoke.recorders import recording


@pytest.fixture
def health(tmp_path: Path):
    with override_settings(ROOT_URLCONF="tests.smoke.health_urls", MEDIA_ROOT=str(tmp_path)):
        yield Client()


@pytest.mark.django_db
def test_readiness_is_json_with_every_check(health: Client) -> None:
    response = health.get("/health/?format=json")
    assert response.status_code == 200, response.content
    data = response.json()
    names = list(data)
    assert any(name.startswith("Database") for name in names)
    assert any(name.startswith("Cache") for name in names)
    assert any(name.startswith("Storage") for name in names)
    assert data["Migrations match version.txt"] == "OK"
    assert data["Release (not deployed)"] == "OK"
    # The same through content negotiation, as a load balancer asks.
    assert health.get("/health/", HTTP_ACCEPT="application/json").json() == data


@pytest.mark.django_db(transaction=True)  # the checks run in threads: nothing held open
def test_an_unapplied_version_makes_it_unhealthy(health: Client) -> None:
    applied = MigrationRecorder.Migration.objects.filter(app="testapp")
    latest = applied.order_by("-name").first()
    if latest is None:
        pytest.fail("tests.testapp has no applied migration to take away")
    latest.delete()
    response = health.get("/health/?format=json")
    assert response.status_code == 500
    assert response.json()["Migrations match version.txt"] == (
        f"Unavailable: not applied: testapp.{latest.name}"
    )


def test_liveness_touches_nothing(health: Client) -> None:
    response = health.get("/health/live/")  # no database access allowed here
    assert (response.status_code, response.json()) == (200, {"status": "alive", "release": None})


def test_sentry_init_does_nothing_without_a_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert sentry.init(None) is False
    assert sentry.init("") is False


def test_a_bad_sample_rate_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_TRACES_SAMPLE_RATE", "lots")
    with pytest.raises(ImproperlyConfigured, match="SENTRY_TRACES_SAMPLE_RATE must be a number"):
        sentry.init("http://key@127.0.0.1:9/1")


def test_sentry_init_reports_the_environment_and_release(tmp_path: Path) -> None:
    release = tmp_path / "releases" / "20261123-1-abc"
    (release / "settings").mkdir(parents=True)
    (release / "release.json").write_text(json.dumps({"id": "20261123-1-abc", "env": "live"}))
    (release / "REVISION").write_text("0123456789abcdef\n")
    script = textwrap.dedent(
        f"""
        import sentry_sdk
        from django_cd import sentry
        assert sentry.init(base_dir={str(release / "settings")!r})
        sentry_sdk.capture_message("hello from the release")
        sentry_sdk.flush(5)
        """
    )
    with recording(status=200) as server:
        dsn = f"http://key@{server.url[7:]}3"
        env = {**os.environ, "SENTRY_DSN": dsn, "SENTRY_SAMPLE_RATE": "1.0"}
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path.cwd(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        (posted,) = server.wait_for(1)
    item = next(part for part in posted.envelope() if part.get("message"))
    assert item["message"] == "hello from the release"
    assert (item["environment"], item["release"]) == ("live", "0123456789abcdef")
