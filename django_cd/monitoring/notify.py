"""Telling people: mail through Django's mail system, and a Slack-compatible webhook."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.mail import send_mail

from django_cd.monitoring.event import DeployEvent

TIMEOUT = 10.0


class NotifyError(Exception):
    """A notifier that could not deliver; the message never holds a secret URL."""


def send(entry: Mapping[str, Any], event: DeployEvent) -> str | None:
    """Deliver ``event`` through one ``notifications`` entry; None when ``on`` skips it."""
    if event.kind not in entry.get("on", ("success", "failure")):
        return None
    if entry["type"] == "mail":
        return _mail(list(entry["to"]), event)
    return _webhook(_webhook_url(entry), event)


def _mail(to: list[str], event: DeployEvent) -> str:
    try:
        send_mail(f"[django-cd] {event.title()}", event.text(), None, to)
    except Exception as error:  # SMTP, DNS, a misconfigured backend: say which
        raise NotifyError(
            f"mail to {', '.join(to)} failed: {type(error).__name__}: {error}"
        ) from None
    return f"mail sent to {', '.join(to)}"


def _webhook_url(entry: Mapping[str, Any]) -> str:
    if entry.get("url"):
        return str(entry["url"])
    variable = str(entry["url_variable"])
    url = os.environ.get(variable, "")
    if not url:
        raise NotifyError(f"webhook: {variable} is not set in the environment")
    return url


def _webhook(url: str, event: DeployEvent) -> str:
    # A webhook URL is a credential (Slack's carry their token in the path): only
    # its host is ever named.
    host = urlsplit(url).netloc or "?"
    request = urllib.request.Request(
        url,
        data=json.dumps(event.slack()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise NotifyError(f"webhook to {host} answered {error.code}") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise NotifyError(f"webhook to {host} failed: {reason}") from None
    return f"webhook to {host}: {status}"
