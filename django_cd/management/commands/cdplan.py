"""``manage.py cdplan``: the migration report the deploy engine plans with, as JSON.

Run by the engine in a release (usually in its agent), to learn what ``migrate``
would apply and how to migrate back; see ``migration_version.plan.database_report``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_cd.migration_version.plan import database_report


class Command(BaseCommand):
    help = "Print the database's migration report for the deploy engine (JSON, one line)."
    requires_system_checks: list[str] = []  # a plan must be readable from a broken release

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--target",
            help="JSON: app label -> migration name or null (zero), to plan the way back to.",
        )
        parser.add_argument("--lint", action="store_true", help="Lint the pending migrations.")
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            target = json.loads(options["target"]) if options["target"] else None
        except ValueError as error:
            raise CommandError(f"--target is not JSON: {error}") from None
        if target is not None and not isinstance(target, dict):
            raise CommandError("--target must be a JSON object: app label -> name or null.")
        report = database_report(target, lint=options["lint"], database=options["database"])
        self.stdout.write(json.dumps(report.to_dict(), sort_keys=True))
