"""Notifications, Sentry and StatsD against loopback recorders, with real outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.test import override_settings

from django_cd.monitoring import config, metrics, notify, sentry_api
from django_cd.monitoring.event import DeployEvent
from django_cd.pipeline.steps import Outcome, StepResult
from tests.smoke.recorders import Recorder, recording, udp_receiver

SHA = "0123456789abcdef0123456789abcdef01234567"
OLD = "fedcba9876543210fedcba9876543210fedcba98"
TOKEN = "sntrys_secret-token-value"


def outcome(status: str = "success", **fields: Any) -> Outcome:
    result = Outcome(action="deploy", env="staging", status=status, release="20261123-1-abc",
                     commit=SHA, previous="20261122-1-old", seconds=42.5, **fields)  # fmt: skip
    result.steps = [StepResult("upload", "ok", 1.25), StepResult("migrate", "ok", 0.5)]
    return result


def failed() -> Outcome:
    result = outcome("rolled_back", failed_step="watch", error="Release served 7 5xx responses")
    result.rollback_steps = [StepResult("switch", "ok", 0.01), StepResult("reload", "ok", 1.0)]
    return result


def event(result: Outcome) -> DeployEvent:
    return DeployEvent(result, by="dee (Dee Ployer <dee@example.com>)",
                       commits=[(SHA, "Fix the board title"), (OLD[:8] + SHA[8:], "Add notes")],
                       previous_commit=OLD)  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with recording() as server:
        yield server


def test_mail_says_who_what_and_the_commit_range() -> None:
    assert notify.send({"type": "mail", "to": ["ops@example.com"]}, event(outcome()))
    message = mail.outbox[-1]
    assert message.to == ["ops@example.com"]
    assert message.subject == "[django-cd] Deploy of 20261123-1-abc to staging succeeded"
    body = message.body
    for line in (
        "Environment: staging",
        "Release:     20261123-1-abc",
        f"Commits:     {OLD[:12]}..{SHA[:12]}",
        "By:          dee (Dee Ployer <dee@example.com>)",
        "Duration:    42.5 s",
        "Outcome:     success",
        f"  {SHA[:12]} Fix the board title",
    ):
        assert line in body.splitlines()


def test_a_failure_names_the_step_and_the_rollback() -> None:
    notify.send({"type": "mail", "to": ["ops@example.com"], "on": ["failure"]}, event(failed()))
    lines = mail.outbox[-1].body.splitlines()
    assert lines[0] == "Deploy of 20261123-1-abc to staging FAILED and was rolled back"
    assert "Failed step: watch" in lines
    assert "Error:       Release served 7 5xx responses" in lines
    assert "Rollback:    20261122-1-old serves again" in lines
    # "on" filters: a success is not mailed to a failure-only list.
    count = len(mail.outbox)
    assert (
        notify.send({"type": "mail", "to": ["a@b.c"], "on": ["failure"]}, event(outcome())) is None
    )
    assert len(mail.outbox) == count


def test_webhook_posts_a_slack_payload(
    receiver: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_URL", receiver.url + "services/T000/B000/secret")
    detail = notify.send({"type": "webhook", "url_variable": "HOOK_URL"}, event(failed()))
    assert detail == f"webhook to {receiver.url[7:-1]}: 201"
    (posted,) = receiver.received
    assert posted.path == "/services/T000/B000/secret"
    payload = posted.json()
    assert payload["text"] == "Deploy of 20261123-1-abc to staging FAILED and was rolled back"
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "danger"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Failed step"] == "watch"
    assert fields["Rollback"] == "20261122-1-old serves again"
    assert fields["Commits"] == f"{OLD[:12]}..{SHA[:12]}"


def test_a_failing_webhook_is_reported_without_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording(status=500) as server:
        url = server.url + "services/secret-path"
        with pytest.raises(notify.NotifyError) as error:
            notify.send({"type": "webhook", "url": url}, event(outcome()))
    assert str(error.value) == f"webhook to {server.url[7:-1]} answered 500"
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    with pytest.raises(notify.NotifyError, match="webhook: NO_SUCH_HOOK is not set"):
        notify.send({"type": "webhook", "url_variable": "NO_SUCH_HOOK"}, event(outcome()))


def sentry_settings(api: str) -> dict[str, Any]:
    settings = config.sentry(
        {"SENTRY": {"organization": "acme", "project": "notes", "api_url": api}}
    )
    assert settings is not None
    return settings


def test_sentry_release_and_deploy_marker(
    receiver: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    done = sentry_api.report(sentry_settings(receiver.url + "api/0/"), event(outcome()))
    assert done == [f"Sentry release {SHA[:12]} and deploy to staging recorded"]
    release, deploy = receiver.received
    assert release.path == "/api/0/organizations/acme/releases/"
    assert release.headers["Authorization"] == f"Bearer {TOKEN}"
    assert release.json() == {"version": SHA, "projects": ["notes"], "ref": SHA}
    assert deploy.path == f"/api/0/organizations/acme/releases/{SHA}/deploys/"
    body = deploy.json()
    assert (body["environment"], body["name"]) == ("staging", "deploy 20261123-1-abc")
    assert body["dateStarted"] < body["dateFinished"]


def test_without_a_token_no_marker_is_sent(
    receiver: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert sentry_api.report(sentry_settings(receiver.url), event(outcome())) == []
    assert receiver.received == []


def test_sentry_refusing_the_token_is_reported_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    with recording(status=403) as server, pytest.raises(sentry_api.SentryError) as error:
        sentry_api.report(sentry_settings(server.url), event(outcome()))
    assert str(error.value) == (
        "Sentry API /organizations/acme/releases/ answered 403 (is the token allowed "
        "project:releases?)"
    )
    assert TOKEN not in str(error.value)


def test_a_failed_deploy_is_a_sentry_event(
    receiver: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("SENTRY_DSN", f"http://publickey@{receiver.url[7:]}7")
    (done,) = sentry_api.report(sentry_settings(receiver.url), event(failed()))
    assert done.startswith("failure reported to Sentry as event ")
    (posted,) = receiver.wait_for(1)
    assert posted.path == "/api/7/envelope/"
    item = next(part for part in posted.envelope() if part.get("message"))
    assert item["message"] == "Deploy of 20261123-1-abc to staging FAILED and was rolled back"
    assert (item["level"], item["environment"], item["release"]) == ("error", "staging", SHA)
    assert item["tags"]["django_cd.failed_step"] == "watch"


def test_statsd_gets_outcome_duration_and_steps() -> None:
    with udp_receiver() as udp:
        settings = config.statsd({"STATSD": {"port": udp.port, "prefix": "cd"}})
        assert settings is not None
        metrics.send(settings, outcome())
        lines = udp.metrics()
    assert sorted(lines) == sorted(
        [
            "cd.staging.deploy.success:1|c",
            "cd.staging.deploy.duration:42500.000000|ms",
            "cd.staging.deploy.step.upload:1250.000000|ms",
            "cd.staging.deploy.step.migrate:500.000000|ms",
        ]
    )


def test_announce_reports_a_failing_notifier_and_sends_the_rest(
    receiver: Recorder, tmp_path: Any
) -> None:
    from django_cd import conf
    from django_cd.monitoring import announce
    from django_cd.pipeline.target import Target

    definition = {
        "settings": "tests.settings",
        "root": str(tmp_path / "staging"),
        "notifications": [
            {"type": "webhook", "url": "http://127.0.0.1:9/hook"},  # nothing listens
            {"type": "webhook", "url": receiver.url + "hook"},
        ],
    }
    with override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": definition}}):
        env = conf.get_environment("staging")
        warnings = announce(Target(env), outcome())
    assert len(warnings) == 1
    assert warnings[0].startswith("Notification (webhook) failed: webhook to 127.0.0.1:9 failed:")
    assert [r.path for r in receiver.received] == ["/hook"]
