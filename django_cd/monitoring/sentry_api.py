"""Sentry releases and deploy markers through Sentry's web API; failures as events.

The Sentry release version is the commit sha (what ``REVISION`` holds and what
``django_cd.sentry.init`` reports), so staging and live deploys of one commit
are two deploys of one Sentry release.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from django_cd.monitoring.event import DeployEvent


class SentryError(Exception):
    """Sentry could not be told; the message never holds the token."""


def report(settings: dict[str, Any], event: DeployEvent) -> list[str]:
    """Tell Sentry about ``event``: release + deploy marker, and an event on failure."""
    done = []
    token = os.environ.get(settings["token_variable"], "")
    version = event.outcome.commit
    if token and version and event.ok:
        done.append(_marker(settings, token, version, event))
    dsn = os.environ.get(settings["dsn_variable"], "")
    if dsn and not event.ok:
        done.append(_failure_event(dsn, event))
    return done


def _marker(settings: dict[str, Any], token: str, version: str, event: DeployEvent) -> str:
    organization = quote(settings["organization"], safe="")
    base = urljoin(settings["api_url"].rstrip("/") + "/", f"organizations/{organization}/")
    _post(
        settings,
        token,
        base + "releases/",
        {"version": version, "projects": [settings["project"]], "ref": version},
        accept=(200, 201, 208),
    )
    finished = datetime.now(UTC)
    started = finished - timedelta(seconds=event.outcome.seconds)
    _post(
        settings,
        token,
        base + f"releases/{quote(version, safe='')}/deploys/",
        {
            "environment": event.outcome.env,
            "name": f"{event.outcome.action} {event.outcome.release}",
            "dateStarted": started.isoformat().replace("+00:00", "Z"),
            "dateFinished": finished.isoformat().replace("+00:00", "Z"),
        },
        accept=(200, 201),
    )
    return f"Sentry release {version[:12]} and deploy to {event.outcome.env} recorded"


def _post(
    settings: dict[str, Any], token: str, url: str, body: dict[str, Any], accept: tuple[int, ...]
) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    path = urlsplit(url).path
    try:
        with urllib.request.urlopen(request, timeout=settings["timeout"]) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        raise SentryError(f"Sentry API {path} failed: {getattr(error, 'reason', error)}") from None
    if status not in accept:
        hint = " (is the token allowed project:releases?)" if status in (401, 403) else ""
        raise SentryError(f"Sentry API {path} answered {status}{hint}")


def _failure_event(dsn: str, event: DeployEvent) -> str:
    import sentry_sdk

    outcome = event.outcome
    client = sentry_sdk.Client(
        dsn=dsn,
        environment=outcome.env,
        release=outcome.commit,
        default_integrations=False,
        server_name="django-cd",
    )
    try:
        event_id = client.capture_event(
            {
                "message": event.title(),
                "level": "error",
                "logger": "django_cd.deploy",
                "tags": {
                    "django_cd.action": outcome.action,
                    "django_cd.failed_step": outcome.failed_step or "",
                    "django_cd.release": outcome.release or "",
                },
                "extra": dict(event.facts()),
            }
        )
        client.flush(timeout=5)
    finally:
        client.close()
    if not event_id:
        raise SentryError("the Sentry SDK did not send the failure event")
    return f"failure reported to Sentry as event {event_id}"
