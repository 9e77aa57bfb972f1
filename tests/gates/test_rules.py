"""The gates' own rules, in process: windows, deployers, secret literals, forcing, checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from django_cd.gates import deployers, window
from django_cd.gates.checks import check_gates
from django_cd.gates.result import Report, fail, ok, warn
from django_cd.gates.source import committed_secrets

# Monday 2026-11-23 08:30 UTC is 09:30 in Warsaw (CET, UTC+1).
MONDAY_0830_UTC = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment", "open_"),
    [
        ("mon-thu 09:00-16:00 Europe/Warsaw", MONDAY_0830_UTC, True),
        ("mon-thu 09:00-16:00", MONDAY_0830_UTC, False),  # UTC: 08:30 is before 09:00
        ("mon-thu 09:00-16:00 Europe/Warsaw", datetime(2026, 11, 23, 15, 0, tzinfo=UTC), False),
        ("tue-thu 00:00-24:00", MONDAY_0830_UTC, False),
        ("fri-mon 08:00-09:00", MONDAY_0830_UTC, True),  # wraps round the week
        ("sat 10:00-12:00, mon 08:00-08:31", MONDAY_0830_UTC, True),
        ("Mon 08:31-09:00 UTC", MONDAY_0830_UTC, False),
    ],
)
def test_window_open_and_closed(text, moment, open_):
    assert window.is_open(window.parse(text), moment) is open_


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("weekdays 09:00-16:00", "'weekdays 09:00-16:00' is not 'DAYS HH:MM-HH:MM [ZONE]'"),
        ("mon-fry 09:00-16:00", "'mon-fry 09:00-16:00': 'fry' is not a day"),
        ("mon 16:00-09:00", "'mon 16:00-09:00': the end 09:00 is not after the start."),
        ("mon 09:00-25:00", "'mon 09:00-25:00': 25:00 is not a time of day."),
        ("mon 09:00-16:00 Mars/Olympus", "'Mars/Olympus' is not a known time zone."),
        ("mon 09:00-16:00,", "holds an empty range."),
    ],
)
def test_bad_windows_are_named(text, error):
    with pytest.raises(window.BadWindow) as raised:
        window.parse(text)
    assert error in str(raised.value)


WHO = {"user": "deploy", "git": "Alice Smith <alice@example.com>", "ci": "alice-ci"}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["user:deploy"], "user:deploy"),
        (["git:alice@example.com"], "git:alice@example.com"),
        (["git:Alice Smith"], "git:Alice Smith"),
        (["ci:alice-ci"], "ci:alice-ci"),
        (["bob", "alice@example.com"], "alice@example.com"),
        (["ci:deploy", "user:alice-ci", "git:bob@example.com"], None),
    ],
)
def test_deployer_matching(entries, expected):
    assert deployers.matching(entries, WHO) == expected


def test_ci_identity_comes_from_the_configured_variables(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("DEPLOYER", "jenkins-jane")
    assert deployers.identity(None)["ci"] == "octocat"
    with override_settings(DJANGO_CD={"CI_IDENTITY_VARIABLES": ["DEPLOYER", "GITHUB_ACTOR"]}):
        who = deployers.identity("A <a@example.com>")
    assert (who["ci"], who["ci_variable"], who["git"]) == (
        "jenkins-jane",
        "DEPLOYER",
        "A <a@example.com>",
    )


def test_committed_secret_literals_are_found_without_their_values():
    source = """\
import os
SECRET_KEY = "x7$kq-not-from-the-environment"
DEBUG_PROPAGATE_EXCEPTIONS = False
API_TOKEN: str = "tok-123"
EMPTY_PASSWORD = ""
FROM_ENV_SECRET = os.environ["SECRET"]
DATABASES = {"default": {"PASSWORD": "hunter22", "NAME": "db"}}
CACHE_URL = "redis://user:pw123@cache:6379/0"
"""
    assert committed_secrets(source) == [
        (2, "SECRET_KEY is a string literal"),
        (4, "API_TOKEN is a string literal"),
        (7, "'PASSWORD' is a string literal"),
        (8, "a URL with a password"),
    ]


def test_force_turns_only_overridable_failures_into_warnings():
    report = Report(env="live", ref="HEAD", force_reason="hotfix for INC-42")
    report.add(fail("window", "Outside the window.", "Wait.", overridable=True))
    report.add(fail("database", "Unreachable.", "Start it."))
    report.add(warn("tree", "Dirty."))
    report.add(ok("ref", "HEAD."))
    assert [(g.name, g.result, g.message) for g in report.gates] == [
        ("window", "warn", "Outside the window. Forced: hotfix for INC-42"),
        ("database", "fail", "Unreachable."),
        ("tree", "warn", "Dirty."),
        ("ref", "ok", "HEAD."),
    ]
    assert report.ok is False
    assert report.counts() == {"ok": 1, "warn": 2, "fail": 1}
    assert report.as_dict()["gates"][1] == {
        "name": "database",
        "result": "fail",
        "message": "Unreachable.",
        "hint": "Start it.",
    }


def test_gate_settings_checks():
    config = {
        "ENVIRONMENTS": {
            "live": {
                "settings": "settings.live",
                "root": "/srv/live",
                "deploy_window": "mon-thu 9-16",
                "deployers": ["user:alice", "group:ops", "bob"],
            },
            "staging": {
                "settings": "settings.staging",
                "root": "/srv/staging",
                "deploy_window": "mon-fri 09:00-17:00 Europe/Warsaw",
            },
        }
    }
    with override_settings(DJANGO_CD=config):
        errors = check_gates()
    assert [(e.id, e.msg) for e in errors] == [
        (
            "django_cd.E075",
            "Environment 'live': deploy_window 'mon-thu 9-16' is not 'DAYS HH:MM-HH:MM [ZONE]', "
            "e.g. 'mon-fri 09:00-16:00'.",
        ),
        ("django_cd.E076", "Environment 'live': deployer 'group:ops' has an unknown kind."),
    ]
