"""``history.jsonl``: the append-only record of deploys and rollbacks on a host.

The files are the source of truth; the ``Deployment`` model only mirrors
them, so a rollback works when the database does not.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from typing import Any

from django_cd.pipeline.host import Host
from django_cd.pipeline.layout import Layout

# Environment variables that name the CI job a deploy runs in.
CI_JOB_VARIABLES = ("CI_JOB_URL", "CI_JOB_ID", "GITHUB_RUN_ID", "BUILD_URL", "BUILD_TAG")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def append(host: Host, layout: Layout, entry: dict[str, Any]) -> None:
    """Append one event (``deploy``, ``rollback``, ``lock_broken``) to the history."""
    host.makedirs(layout.root)
    host.append_text(layout.history, json.dumps(entry, sort_keys=True) + "\n")


def read(host: Host, layout: Layout) -> list[dict[str, Any]]:
    """Every event, oldest first; unreadable lines are skipped, not fatal."""
    if not host.exists(layout.history):
        return []
    events = []
    for line in host.read_text(layout.history).splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def deployer(git_identity: str | None = None) -> dict[str, str]:
    """Who deploys: OS user, git identity and CI job, as far as known."""
    who = {"user": getpass.getuser()}
    if git_identity:
        who["git"] = git_identity
    for variable in CI_JOB_VARIABLES:
        if os.environ.get(variable):
            who["ci_job"] = os.environ[variable]
            break
    return who


def describe_deployer(who: dict[str, Any] | None) -> str:
    if not who:
        return ""
    text = str(who.get("user", ""))
    if who.get("git"):
        text += f" ({who['git']})"
    return text
