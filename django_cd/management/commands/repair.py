"""``manage.py repair --env=NAME``: undo (or ``--forward``: finish) a command that died,
or bring the database back to what the current release expects.

Exit status: 0 repaired (or nothing to repair); 1 refused or failed.
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
from django_cd.pipeline.repair import Repair


class Command(BaseCommand):
    help = (
        "Repair an environment after a deploy or rollback died part-way, or after the "
        "database drifted from the current release (see manage.py status)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. live.")
        parser.add_argument(
            "--forward",
            action="store_true",
            help="Finish the dead command (serve the release it was making) instead of "
            "undoing it.",
        )
        parser.add_argument(
            "--break-lock",
            action="store_true",
            help="Break a stale lock that the dead command did not hold (recorded).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        as_json, verbosity = options["json"], options["verbosity"]
        with engine_errors("Repair interrupted (Ctrl-C or SIGTERM); run it again."):
            repair = Repair(
                env,
                forward=options["forward"],
                break_lock=options["break_lock"],
                on_step=None if as_json else step_printer(self, verbosity),
            )
            outcome = repair.run()
        report(self, outcome, as_json=as_json, verbosity=verbosity)
