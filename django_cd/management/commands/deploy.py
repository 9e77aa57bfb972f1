"""``manage.py deploy --env=NAME``: release, migrate, switch, reload, smoke check, tag.

Exit status: 0 deployed; 1 refused, failed or rolled back (the message says which).
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
    write_json,
)
from django_cd.pipeline import Deploy


class Command(BaseCommand):
    help = "Deploy a commit to an environment: release, migrate, switch, reload, check, tag."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. staging.")
        parser.add_argument("--ref", default="HEAD", help="Branch, tag or commit (default HEAD).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the plan; change nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--allow-dirty", action="store_true", help="Deploy although the checkout has changes."
        )
        parser.add_argument(
            "--break-lock", action="store_true", help="Break a stale lock (recorded in history)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        as_json, verbosity = options["json"], options["verbosity"]
        interrupted = (
            "Deploy interrupted (Ctrl-C or SIGTERM): undone as far as it had gone; "
            "the lock is free. "
            f"See manage.py releases --env={env.name}."
        )
        with engine_errors(interrupted):
            deploy = Deploy(
                env,
                ref=options["ref"],
                allow_dirty=options["allow_dirty"],
                break_lock=options["break_lock"],
                on_step=None if as_json else step_printer(self, verbosity),
            )
            if options["dry_run"]:
                self._print_plan(deploy.plan(), as_json)
                return
            if not as_json and verbosity >= 1:
                self.stdout.write(f"Deploying {options['ref']} to {env.name} ({env.root})")
            outcome = deploy.run()
        report(self, outcome, as_json=as_json, verbosity=verbosity)

    def _print_plan(self, plan: dict[str, Any], as_json: bool) -> None:
        if as_json:
            write_json(self.stdout, {"dry_run": True, **plan})
            return
        self.stdout.write(f"Dry run: deploy {plan['commit']} ({plan['subject']}) to {plan['env']}")
        self.stdout.write(f"  current release: {plan['current'] or 'none (first deploy)'}")
        self.stdout.write(f"  steps: {', '.join(plan['steps'])}")
        self.stdout.write(f"  backup: {'yes' if plan['backup'] else 'no'}")
        migrations = plan["migrations"]
        if migrations is None:
            self.stdout.write(f"  migrations: {plan['note']}")
        else:
            self.stdout.write(f"  migrations: {', '.join(migrations) or 'none'}")
        lints = plan["lints"]
        if lints is not None:
            self.stdout.write(f"  lints: {lints['summary']}")
            for finding in lints["findings"]:
                self.stdout.write(
                    f"    {finding['app']}.{finding['migration']}: {finding['kind']}: "
                    f"{finding['why']}"
                )
        self.stdout.write("Nothing was changed.")
