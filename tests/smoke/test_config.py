"""Validation of ``smoke``, declared ``smoke_checks`` and ``watch`` (E130-E136, W130)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_cd.checks import check_settings

GOOD_ENV = {"settings": "settings.staging", "root": "/srv/app/staging"}


def found(**fields: Any) -> list[tuple[str, str]]:
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": {**GOOD_ENV, **fields}}}):
        return [(m.id, m.msg) for m in check_settings()]


def test_a_full_valid_declaration_has_no_problem() -> None:
    assert (
        found(
            smoke={"defaults": ["home", "health"], "grace_seconds": 0, "health_path": "/ht/"},
            smoke_checks=[
                "django_cd.pipeline.smoke.check_release",
                {
                    "name": "notes",
                    "path": "/notes/",
                    "method": "head",
                    "status": 200,
                    "contains": ["a"],
                    "not_contains": "b",
                    "max_seconds": 2,
                    "warn_seconds": 1,
                    "login": True,
                    "json": False,
                    "release": False,
                },
            ],
        )
        == []
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"smoke": {"grace": 3}}, ("django_cd.E130", "'smoke' has unknown key(s) 'grace'.")),
        ({"smoke": []}, ("django_cd.E131", "'smoke' must be a dict, not list.")),
        ({"smoke": {"defaults": ["home", "api"]}}, ("django_cd.E131", "'smoke' 'defaults'")),
        ({"smoke": {"timeout": 0}}, ("django_cd.E131", "'smoke' 'timeout' must be a number")),
        ({"smoke": {"login_path": "admin/"}}, ("django_cd.E131", "'login_path' must be a path")),
        (
            {"smoke": {"password_variable": "A B"}},
            ("django_cd.E131", "'smoke' 'password_variable' must name an environment variable."),
        ),
        ({"smoke_checks": [{"name": "x"}]}, ("django_cd.E132", "smoke check 'x' has no 'path'.")),
        (
            {"smoke_checks": [{"path": "/", "expect": 200}]},
            ("django_cd.E132", "smoke check '/' has unknown key(s) 'expect'."),
        ),
        (
            {"smoke_checks": [{"path": "x", "status": 999, "method": "DELETE", "login": 1}]},
            (
                "django_cd.E133",
                "smoke check 'x': 'path' must start with '/'; 'method' must be one of GET, "
                "HEAD; 'status' must be an HTTP status such as 200; 'login' must be True or "
                "False.",
            ),
        ),
        (
            {"smoke_checks": [{"path": "/"}, {"path": "/a/", "name": "/"}]},
            ("django_cd.E134", "smoke check name(s) '/' used twice."),
        ),
        ({"watch": {"secs": 5}}, ("django_cd.E135", "'watch' must be a dict of seconds")),
        (
            {"watch": {"seconds": -1, "max_5xx": 1.5, "interval": 0}},
            ("django_cd.E136", "'watch': 'seconds' must be a number of seconds (0 turns"),
        ),
    ],
)
def test_each_problem_has_its_id(fields: dict[str, Any], expected: tuple[str, str]) -> None:
    problems = found(**fields)
    assert len(problems) == 1, problems
    check_id, message = problems[0]
    assert check_id == expected[0]
    assert message.startswith("Environment 'staging': ")
    assert expected[1] in message


def test_a_watch_without_the_counting_middleware_warns() -> None:
    assert found(watch={"seconds": 30}) == [
        (
            "django_cd.W130",
            "Environment 'staging': the watch runs, but "
            "django_cd.smoke.counter.ResponseCountMiddleware is not in MIDDLEWARE, so 5xx "
            "responses are not counted (only the smoke checks are repeated).",
        )
    ]
    with override_settings(MIDDLEWARE=["django_cd.smoke.counter.ResponseCountMiddleware"]):
        assert found(watch={"seconds": 30}) == []


def test_check_command_fails_on_a_bad_declared_check() -> None:
    env = {**GOOD_ENV, "smoke_checks": [{"path": "/", "status": "ok"}]}
    with (
        override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": env}}),
        pytest.raises(SystemCheckError, match=r"django_cd\.E133"),
    ):
        call_command("check")
