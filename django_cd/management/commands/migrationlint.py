"""``manage.py migrationlint``: what the migrations a database has not applied yet mean
for a deploy (irreversible, backward-incompatible, data loss, expand and contract).

Exit codes: 0, unless ``--fail-on KIND`` is given and a finding of that kind exists (1).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from django_cd.migration_version import MigrationVersionError, Report, lint_plan, plan_targets

KINDS = ["irreversible", "backward-incompatible", "data-loss", "expand-contract", "locking"]


class Command(BaseCommand):
    help = "Lint the migrations that `migrate` would apply on a database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="?", help="Only the plan up to this app's leaf.")
        parser.add_argument("migration_name", nargs="?", help="... or up to this migration.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument(
            "--fail-on",
            action="append",
            choices=KINDS,
            default=[],
            help="Exit 1 when a finding of this kind exists (repeatable).",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")

    def handle(self, **options: Any) -> None:
        try:
            targets = plan_targets(options["app_label"], options["migration_name"])
            report = lint_plan(options["database"], targets)
        except MigrationVersionError as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            self._print(report, options["verbosity"])
        failing = [f for f in report.findings if f.kind in options["fail_on"]]
        if failing:
            kinds = ", ".join(options["fail_on"])
            raise CommandError(f"{len(failing)} finding(s) of kind {kinds}.")

    def _print(self, report: Report, verbosity: int) -> None:
        if verbosity >= 2:
            for step in report.plan.steps:
                self.stdout.write(f"  {step.app}.{step.name}")
        for finding in report.findings:
            self.stdout.write(
                f"{finding.app}.{finding.migration}: {finding.operation}\n"
                f"  {finding.kind} ({finding.code}): {finding.why}"
            )
        for note in report.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(report.summary)
