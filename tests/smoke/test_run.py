"""The smoke layer against a real loopback HTTP site: verdicts, retries, bad answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_cd import conf
from django_cd.smoke import Credentials, SmokeRun
from tests.smoke.site import RELEASE, SiteServer, running_site


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with running_site() as server:
        yield server


def environment(url: str, **fields: Any) -> conf.Environment:
    definition = {"settings": "tests.settings", "root": "/srv/t/staging", "urls": [url], **fields}
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": definition}}):
        return conf.get_environment("staging")


def run(url: str, checks: list[Any], release: str | None = RELEASE, **smoke: Any) -> Any:
    env = environment(url, smoke_checks=checks, smoke={"defaults": [], **smoke})
    return SmokeRun(env, url, release, grace_seconds=0).run()


def only(url: str, check: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    report = run(url, [check], **kwargs)
    return report.as_dict()["checks"][0]


def test_the_default_checks_pass_on_a_healthy_site(site: SiteServer) -> None:
    env = environment(site.url, smoke={"defaults": ["home", "admin"]})
    report = SmokeRun(env, site.url, RELEASE, grace_seconds=0).run()
    assert report.ok
    assert [(c["name"], c["status"], c["message"]) for c in report.as_dict()["checks"]] == [
        ("home", 200, "passed"),
        ("admin login page", 200, "passed"),
    ]
    # Every probe says it came through a TLS proxy, as the live site sees it.
    assert all(headers.get("X-Forwarded-Proto") == "https" for _, _, headers in site.requests)


def test_a_500_fails_with_the_status_in_the_message(site: SiteServer) -> None:
    result = only(site.url, {"name": "boom", "path": "/boom/"})
    assert (result["ok"], result["status"]) == (False, 500)
    assert result["message"] == "answered 500, not 200"


def test_text_that_must_and_must_not_appear(site: SiteServer) -> None:
    check = {"path": "/", "contains": ["Notes board", "Welcome"], "not_contains": "<h1>"}
    result = only(site.url, check)
    assert result["message"] == "'Welcome' is not in the page; '<h1>' is in the page"
    assert result["name"] == "/"


def test_the_wrong_release_fails(site: SiteServer) -> None:
    result = only(site.url, {"name": "old", "path": "/old/"})
    assert result["message"] == f"served by release 20200101-000000-old, not {RELEASE}"
    # Without an expected release (a site not deployed by django-cd), any release passes.
    assert only(site.url, {"name": "old", "path": "/old/"}, release=None)["ok"]


def test_a_slow_answer_fails_its_maximum_time(site: SiteServer) -> None:
    result = only(site.url, {"name": "slow", "path": "/slow/", "max_seconds": 0.5})
    assert result["ok"] is False
    assert result["message"] in ("no answer from " + site.url[7:-1] + " within 0.5 s",)


def test_slower_than_warn_seconds_passes_but_warns(site: SiteServer) -> None:
    report = run(site.url, [{"name": "slow", "path": "/slow/", "warn_seconds": 0.2}])
    assert report.ok
    code, line = report.nagios()
    assert code == 1
    assert line.startswith("SMOKE WARNING - 1 check(s) slow: slow 1.5")


def test_a_redirect_loop_is_a_failed_check(site: SiteServer) -> None:
    result = only(site.url, {"name": "loop", "path": "/loop/"})
    assert result["message"] == f"redirect loop: {site.url}loop/ -> {site.url}loop/"


def test_redirects_are_followed(site: SiteServer) -> None:
    assert only(site.url, {"name": "hop", "path": "/hop/"})["ok"]


def test_html_where_json_was_expected(site: SiteServer) -> None:
    assert only(site.url, {"name": "h", "path": "/health/", "json": True})["message"] == (
        "answered text/html, not JSON"
    )
    assert only(site.url, {"name": "j", "path": "/json-ok/", "json": True})["ok"]
    assert only(site.url, {"name": "j", "path": "/json-bad/", "json": True})["message"] == (
        "unhealthy: Database: unavailable: connection refused"
    )


def test_nothing_listening_is_a_failed_check_not_a_traceback() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"  # bound, not listening
        result = only(url, {"name": "home", "path": "/"})
    assert result["message"] == f"connection refused by {url[7:-1]}: is the server running?"
    assert result["status"] is None


def test_tls_to_a_plain_http_server_is_a_failed_check(site: SiteServer) -> None:
    url = site.url.replace("http://", "https://")
    result = only(url, {"name": "home", "path": "/"})
    assert result["ok"] is False
    assert result["message"].startswith("TLS error talking to 127.0.0.1:")


def test_a_timeout_is_a_failed_check() -> None:
    with socket.socket() as sock:  # accepts connections, never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        result = only(url, {"name": "home", "path": "/", "max_seconds": 0.3})
    assert result["message"] == f"no answer from {url[7:-1]} within 0.3 s"


def test_failing_checks_are_retried_until_the_grace_period_ends(site: SiteServer) -> None:
    env = environment(site.url, smoke_checks=[{"name": "later", "path": "/later/"}],
                      smoke={"defaults": []})  # fmt: skip
    site.started = time.monotonic()
    report = SmokeRun(env, site.url, RELEASE, grace_seconds=10).run()
    assert report.ok
    assert report.results[0].attempts > 1
    assert 1.0 < report.seconds < 5
    # Without grace, the first answer is the verdict.
    site.started = time.monotonic()
    assert not SmokeRun(env, site.url, RELEASE, grace_seconds=0).run().ok


def test_dotted_path_checks_still_work(site: SiteServer) -> None:
    report = run(
        site.url, ["tests.smoke.test_run.passing_check", "tests.smoke.test_run.failing_check"]
    )
    assert [(c["name"], c["ok"], c["message"]) for c in report.as_dict()["checks"]] == [
        ("tests.smoke.test_run.passing_check", True, "passed"),
        ("tests.smoke.test_run.failing_check", False, "RuntimeError: no notes on the board"),
    ]
    assert CALLS[-2:] == [("staging", site.url, RELEASE)] * 2


CALLS: list[tuple[str, str, str | None]] = []


def passing_check(env: conf.Environment, url: str, release: str | None) -> None:
    CALLS.append((env.name, url, release))


def failing_check(env: conf.Environment, url: str, release: str | None) -> None:
    CALLS.append((env.name, url, release))
    raise RuntimeError("no notes on the board")


def test_login_as_the_smoke_user(site: SiteServer) -> None:
    check = {"name": "private", "path": "/private/", "login": True, "contains": "welcome"}
    env = environment(site.url, smoke_checks=[check], smoke={"defaults": []})
    good = SmokeRun(env, site.url, RELEASE, grace_seconds=0,
                    login=Credentials("smoke", "right-horse")).run()  # fmt: skip
    assert good.ok, good.table()
    posted = [r for r in site.requests if r[0] == "POST"]
    assert "csrfmiddlewaretoken=tok" in posted[0][2]["body"]
    assert posted[0][2]["Referer"] == f"https://{site.url[7:]}admin/login/"
    bad = SmokeRun(env, site.url, RELEASE, grace_seconds=0,
                   login=Credentials("smoke", "wrong-horse-battery")).run()  # fmt: skip
    message = bad.results[0].message
    assert message == (
        "logging in as the smoke user (DJANGO_CD_SMOKE_USER) failed: the login page "
        "answered 200; check the credentials"
    )
    assert "wrong-horse-battery" not in "\n".join(bad.table())


def test_login_without_credentials_names_the_variables(site: SiteServer, monkeypatch) -> None:
    monkeypatch.delenv("DJANGO_CD_SMOKE_USER", raising=False)
    result = only(site.url, {"name": "private", "path": "/private/", "login": True})
    assert result["message"] == (
        "this check logs in, but DJANGO_CD_SMOKE_USER and DJANGO_CD_SMOKE_PASSWORD "
        "are not both set in the environment"
    )


def test_a_declared_check_may_share_a_default_name(site: SiteServer) -> None:
    env = environment(site.url, smoke_checks=[{"name": "home", "path": "/boom/"}])
    report = SmokeRun(env, site.url, RELEASE, grace_seconds=0).run()
    assert [(r.name, r.ok) for r in report.results] == [
        ("home", True),
        ("admin login page", True),
        ("home", False),
    ]
