"""``manage.py rollback --env=NAME``: the previous (or a named) release back in seconds.

Exit status: 0 rolled back; 1 refused, cancelled or failed (the message says why).
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd.management.commands._output import (
    engine_errors,
    environment,
    report,
    step_printer,
)
from django_cd.pipeline import Rollback
from django_cd.pipeline.rollback import DataLoss


class Command(BaseCommand):
    help = "Roll an environment back to its previous release (or --to RELEASE)."
    # The checkout's own checks (version files, test pipelines) must not stand in the
    # way of a rollback when something is broken; get_environment() still refuses a bad
    # DJANGO_CD.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. live.")
        parser.add_argument("--to", help="The release id to go back to (default: the previous).")
        parser.add_argument(
            "--with-db",
            action="store_true",
            help="Restore the database backup recorded for the target release.",
        )
        parser.add_argument(
            "--restore-flags",
            action="store_true",
            help="Put back the feature flag states recorded by the target release (diff shown).",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Confirm --with-db without a question (needed when stdin is not a terminal).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--break-lock", action="store_true", help="Break a stale lock (recorded in history)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        as_json, verbosity = options["json"], options["verbosity"]
        with engine_errors("Rollback interrupted (Ctrl-C or SIGTERM); the lock is free."):
            rollback = Rollback(
                env,
                to=options["to"],
                with_db=options["with_db"],
                break_lock=options["break_lock"],
                restore_flags=options["restore_flags"],
                on_step=None if as_json else step_printer(self, verbosity),
            )
            if options["with_db"]:
                self.confirm(rollback.data_loss(), yes=options["yes"])
            outcome = rollback.run()
        report(self, outcome, as_json=as_json, verbosity=verbosity)

    def confirm(self, loss: DataLoss, *, yes: bool) -> None:
        """Say what --with-db loses; go on only on --yes or a "y" typed at a terminal."""
        self.stderr.write(loss.describe())
        if yes:
            return
        if not sys.stdin.isatty():
            raise CommandError(
                "rollback --with-db asks before it discards data, and stdin is not a "
                "terminal: run again with --yes to confirm. Nothing was changed."
            )
        self.stderr.write("Restore it and lose those writes? [y/N] ", ending="")
        self.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            raise CommandError("Rollback cancelled. Nothing was changed.")
