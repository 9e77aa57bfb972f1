"""``manage.py smoketest``: the table, --json, --nagios, --junit-xml, exit codes, bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.smoke.site import RELEASE, SiteServer, running_site


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with running_site() as server:
        yield server


def configured(url: str, checks: list[Any]) -> Any:
    env = {
        "settings": "tests.settings",
        "root": "/nonexistent/smoke-tests/staging",
        "urls": [url],
        "smoke": {"defaults": ["home"], "grace_seconds": 0},
        "smoke_checks": checks,
    }
    return override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": env}})


def smoketest(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("smoketest", "--env=staging", *args, stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def test_a_passing_site_prints_the_table_and_exits_0(site: SiteServer) -> None:
    with configured(site.url, [{"name": "notes", "path": "/", "contains": "Notes"}]):
        out, _ = smoketest(f"--release={RELEASE}")
    lines = out.splitlines()
    assert lines[0] == f"Smoke test of {site.url}, release {RELEASE}"
    assert lines[1].split() == ["check", "result", "status", "time", "message"]
    assert lines[2].split()[:3] == ["home", "ok", "200"]
    assert lines[3].split()[:3] == ["notes", "ok", "200"]
    assert lines[4].startswith(f"2/2 smoke checks passed against {site.url} in ")


def test_a_failing_check_exits_1_with_a_summary(site: SiteServer) -> None:
    with (
        configured(site.url, [{"name": "boom", "path": "/boom/"}]),
        pytest.raises(CommandError) as failed,
    ):
        smoketest()
    assert failed.value.returncode == 1
    assert str(failed.value) == (
        f"1 of 2 smoke checks failed against {site.url}: boom: answered 500, not 200"
    )


def test_json_has_one_entry_per_check(site: SiteServer) -> None:
    out = StringIO()
    with configured(site.url, [{"name": "boom", "path": "/boom/"}]), pytest.raises(CommandError):
        call_command("smoketest", "--env=staging", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["ok"] is False
    assert [set(check) for check in data["checks"]] == [
        {"name", "ok", "status", "seconds", "message"}
    ] * 2
    assert [(c["name"], c["ok"], c["status"]) for c in data["checks"]] == [
        ("home", True, 200),
        ("boom", False, 500),
    ]


@pytest.mark.parametrize(
    ("checks", "code", "start"),
    [
        ([], 0, "SMOKE OK - 1/1 smoke checks passed against "),
        ([{"name": "slow", "path": "/slow/", "warn_seconds": 0.1}], 1, "SMOKE WARNING - "),
        ([{"name": "boom", "path": "/boom/"}], 2, "SMOKE CRITICAL - 1 of 2 smoke checks failed"),
    ],
)
def test_nagios_line_and_exit_code(
    site: SiteServer, checks: list[Any], code: int, start: str
) -> None:
    out = StringIO()
    with configured(site.url, checks):
        if code:
            with pytest.raises(CommandError) as failed:
                call_command("smoketest", "--env=staging", "--nagios", stdout=out)
            assert failed.value.returncode == code
        else:
            call_command("smoketest", "--env=staging", "--nagios", stdout=out)
    line = out.getvalue().strip()
    assert len(out.getvalue().splitlines()) == 1
    assert line.startswith(start)
    assert "| 'home'=" in line  # performance data: each check's time


def test_nagios_unknown_when_it_cannot_run() -> None:
    out = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("smoketest", "--env=nosuch", "--nagios", stdout=out)
    assert failed.value.returncode == 3
    assert out.getvalue().startswith("SMOKE UNKNOWN - Unknown environment 'nosuch'.")


def test_junit_xml(site: SiteServer, tmp_path: Path) -> None:
    report = tmp_path / "reports" / "smoke.xml"
    with configured(site.url, [{"name": "boom", "path": "/boom/"}]), pytest.raises(CommandError):
        smoketest(f"--junit-xml={report}")
    suite = ET.parse(report).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["home"].find("failure") is None
    failure = cases["boom"].find("failure")
    assert failure is not None and failure.get("message") == "answered 500, not 200"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--url=ftp://example.com/",), "--url 'ftp://example.com/' is not an http(s) URL"),
        (("--grace=-1",), "--grace must be 0 or more seconds, not -1."),
    ],
)
def test_bad_arguments_exit_2(site: SiteServer, args: tuple[str, ...], message: str) -> None:
    with configured(site.url, []), pytest.raises(CommandError) as failed:
        smoketest(*args)
    assert failed.value.returncode == 2
    assert str(failed.value).startswith(message)


def test_an_environment_without_url_exits_2() -> None:
    env = {"settings": "tests.settings", "root": "/srv/t/qa"}
    with (
        override_settings(DJANGO_CD={"ENVIRONMENTS": {"qa": env}}),
        pytest.raises(CommandError) as failed,
    ):
        call_command("smoketest", "--env=qa", stdout=StringIO())
    assert failed.value.returncode == 2
    assert str(failed.value) == (
        "Environment 'qa' has no URL to check. Add one to its 'urls', or pass --url https://..."
    )


def test_url_overrides_the_environment(site: SiteServer) -> None:
    with configured("http://127.0.0.1:9/", []):
        out, _ = smoketest(f"--url={site.url}")
    assert f"1/1 smoke checks passed against {site.url}" in out
