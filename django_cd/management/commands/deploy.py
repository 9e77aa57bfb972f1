"""``manage.py deploy --env=NAME``: gates, release, migrate, switch, reload, smoke check, tag.

The predeploy gates run first (the same as ``manage.py predeploy``); a failed
gate stops the deploy before anything changes. The target gates (settings,
check, migrations, database, plan, disk, reload) are asked of the new release,
under the lock, before anything else runs in it: one Django process answers
them and serves the deploy's own steps; a refusal there removes the unpacked
release. Without ``--ref``, an environment with ``promote_from`` gets the
newest commit that passed it.

Exit status: 0 deployed; 1 refused, failed or rolled back (the message says which);
2 the gates could not be evaluated.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from django_cd.management.commands import _gates
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
        parser.add_argument(
            "--ref",
            default=None,
            help="Branch, tag or commit (default: HEAD, or for an environment with "
            "promote_from the newest commit that passed it).",
        )
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
        parser.add_argument(
            "--skip-unreachable",
            action="store_true",
            help="Deploy a fleet without the SSH hosts that cannot be reached (never the "
            "migration host); they keep serving what they served (recorded).",
        )
        _gates.add_force_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        as_json, verbosity = options["json"], options["verbosity"]
        interrupted = (
            "Deploy interrupted (Ctrl-C or SIGTERM): undone as far as it had gone; "
            "the lock is free. "
            f"See manage.py releases --env={env.name}."
        )
        gates = _gates.evaluate(
            env,
            options["ref"],
            allow_dirty=options["allow_dirty"],
            force_reason=_gates.force_reason(options),
            # A dry run asks them of a scratch release now; a deploy, of its release.
            defer_target=not options["dry_run"],
        )
        if not as_json and verbosity >= 1:
            _gates.print_table(self, gates)
        if not gates.ok:
            if as_json:
                write_json(self.stdout, {"predeploy": gates.as_dict()})
            refusal = _gates.refusal(gates)
            with engine_errors(interrupted):  # history keeps who was refused, and why
                Deploy(env, ref=gates.ref or "HEAD", predeploy=gates.record()).refuse(
                    str(refusal), step="predeploy"
                )
            raise refusal
        with engine_errors(interrupted):
            deploy = Deploy(
                env,
                ref=gates.ref,
                gates=None if options["dry_run"] else gates,
                predeploy=gates.record(),
                allow_dirty=options["allow_dirty"],
                break_lock=options["break_lock"],
                skip_unreachable=options["skip_unreachable"],
                on_step=None if as_json else step_printer(self, verbosity),
            )
            if options["dry_run"]:
                self._print_plan(deploy.plan(), as_json)
                return
            if not as_json and verbosity >= 1:
                hosts = [member.host.name for member in deploy.members]
                where = env.root if len(hosts) == 1 else f"{len(hosts)} hosts: {', '.join(hosts)}"
                self.stdout.write(f"Deploying {gates.ref} to {env.name} ({where})")
            outcome = deploy.run()
        if outcome.status == "refused":  # by a target gate, asked of the new release
            if as_json:
                write_json(self.stdout, {"predeploy": gates.as_dict()})
            elif verbosity >= 1:
                _gates.print_table(self, gates)
            raise _gates.refusal(gates)
        report(self, outcome, as_json=as_json, verbosity=verbosity)

    def _print_plan(self, plan: dict[str, Any], as_json: bool) -> None:
        if as_json:
            write_json(self.stdout, {"dry_run": True, **plan})
            return
        self.stdout.write(f"Dry run: deploy {plan['commit']} ({plan['subject']}) to {plan['env']}")
        self.stdout.write(f"  current release: {plan['current'] or 'none (first deploy)'}")
        self.stdout.write(f"  steps: {', '.join(plan['steps'])}")
        self.stdout.write(f"  backup: {'yes' if plan['backup'] else 'no'}")
        self.stdout.write(f"  environment (shared/.env): {plan['environment']}")
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
