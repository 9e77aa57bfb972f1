"""``manage.py record_deployment``: mirror history entries into the database.

Run by the deploy engine inside a release whose code fits the database, after
a deploy, rollback or repair; not meant to be run by hand. With ``--history``
it mirrors every entry of the environment's ``history.jsonl`` that the
database does not hold yet: the file is written first and is the source of
truth, so an entry whose mirror was cut short (a command killed after the
switch, a database that was briefly down) is caught up by the next command.
With ``--file`` (or stdin) it mirrors one entry.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.timezone import now

from django_cd.models import Deployment
from django_cd.pipeline.history import describe_deployer

#: The history events that are deployments (``lock_broken`` is not).
MIRRORED = frozenset({"deploy", "rollback", "repair"})


class Command(BaseCommand):
    help = "Record deploy/rollback history entries (a history file, or one entry) as rows."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--file", help="Read one entry from this file instead of stdin.")
        parser.add_argument(
            "--history", help="Mirror every entry of this history.jsonl not yet recorded."
        )
        parser.add_argument("--env", help="With --history: the environment whose entries.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["history"]:
            if not options["env"]:
                raise CommandError("--history needs --env NAME.")
            entries = _history(options["history"], options["env"])
        else:
            entries = [_one(options["file"])]
        try:
            with transaction.atomic():
                recorded = _missing(entries) if options["history"] else entries
                rows = [Deployment.objects.create(**_fields(entry)) for entry in recorded]
        except DatabaseError as error:
            raise CommandError(f"Cannot record the deployment: {error}") from None
        if options["history"]:
            self.stdout.write(f"Recorded {len(rows)} deployment(s).")
        else:
            self.stdout.write(f"Recorded deployment {rows[0].pk}.")


def _one(path: str | None) -> dict[str, Any]:
    try:
        if path:
            with open(path) as source:
                entry = json.load(source)
        else:
            entry = json.load(sys.stdin)
    except (OSError, ValueError) as error:
        raise CommandError(f"The history entry is not valid JSON: {error}") from None
    if not isinstance(entry, dict):
        raise CommandError("The history entry is not valid JSON: not an object.")
    return entry


def _history(path: str, env: str) -> list[dict[str, Any]]:
    """The environment's deployments, oldest first: not its refusals, which changed
    nothing and stay in the file only, nor unreadable lines."""
    try:
        with open(path) as source:
            lines = source.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error}") from None
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("event") in MIRRORED
            and entry.get("env") == env
            and entry.get("status") != "refused"  # changed nothing: in the file only
        ):
            entries.append(entry)
    return entries


def _key(action: str, status: str, release: str, at: datetime | None) -> tuple[Any, ...]:
    return (action, status, release, at.isoformat() if at else None)


def _missing(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries no row mirrors yet (a row per entry: by action, status, release, time)."""
    envs = {str(entry.get("env", "")) for entry in entries}
    have = {
        _key(*row)
        for row in Deployment.objects.filter(environment__in=envs).values_list(
            "action", "status", "release", "at"
        )
    }
    missing = []
    for entry in entries:
        fields = _fields(entry)
        key = _key(fields["action"], fields["status"], fields["release"], fields["at"])
        if key not in have:
            have.add(key)
            missing.append(entry)
    return missing


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "environment": str(entry.get("env", "")),
        "action": str(entry.get("event", "deploy")),
        "status": str(entry.get("status", "")),
        "release": str(entry.get("release") or ""),
        "commit": str(entry.get("commit") or ""),
        "previous": str(entry.get("previous") or ""),
        "deployed_by": describe_deployer(entry.get("by")),
        "at": parse_datetime(str(entry.get("at", ""))) or now(),
        "failed_step": str(entry.get("failed_step") or ""),
        "error": str(entry.get("error") or ""),
        "backup": str(entry.get("backup") or ""),
        "details": entry,
    }
