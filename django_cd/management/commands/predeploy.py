"""``manage.py predeploy --env=NAME``: may this commit go there now? Changes nothing.

Exit status: 0 every gate passed (warnings allowed); 1 a gate failed; 2 the
gates could not be evaluated (no repository, unknown environment...).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd.management.commands import _gates
from django_cd.management.commands._output import environment, write_json


class Command(BaseCommand):
    help = "Run every predeploy gate for a commit and an environment; change nothing."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. live.")
        parser.add_argument(
            "--ref",
            default=None,
            help="Branch, tag or commit (default: HEAD, or for an environment with "
            "promote_from the newest commit that passed it).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--allow-dirty", action="store_true", help="Accept a checkout with local changes."
        )
        _gates.add_force_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            env = environment(options["env"])
        except CommandError as error:
            raise CommandError(str(error), returncode=_gates.CANNOT_EVALUATE) from None
        report = _gates.evaluate(
            env,
            options["ref"],
            allow_dirty=options["allow_dirty"],
            force_reason=_gates.force_reason(options),
        )
        if options["json"]:
            write_json(self.stdout, report.as_dict())
        else:
            _gates.print_table(self, report)
        if not report.ok:
            raise _gates.refusal(report)
