"""``manage.py rollback --env=NAME``: the previous (or a named) release back in seconds.

Exit status: 0 rolled back; 1 refused or failed (the message says why).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from django_cd.management.commands._output import (
    engine_errors,
    environment,
    report,
    step_printer,
)
from django_cd.pipeline import Rollback


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
                on_step=None if as_json else step_printer(self, verbosity),
            )
            outcome = rollback.run()
        report(self, outcome, as_json=as_json, verbosity=verbosity)
