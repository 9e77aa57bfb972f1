"""``manage.py server --env=NAME start|stop|status|reload``: the environment's app server."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd.management.commands._output import (
    environment,
    warn_if_database_differs,
    write_json,
)
from django_cd.pipeline import PipelineError, StepFailed, Target
from django_cd.pipeline.fleet import close, fleet_targets


class Command(BaseCommand):
    help = "Start, stop, reload or show the app server of an environment (serving current)."
    # The checkout's own checks (version files, test pipelines) must not stand in the
    # way of stopping or reloading a server when something is broken;
    # get_environment() still refuses a bad DJANGO_CD.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status", "reload"])
        parser.add_argument("--env", required=True, help="The environment, e.g. staging.")
        parser.add_argument("--json", action="store_true", help="Print status as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        try:
            targets = fleet_targets(env)
        except PipelineError as error:
            raise CommandError(str(error)) from None
        try:
            statuses = [self._act(target, options, fleet=len(targets) > 1) for target in targets]
        finally:
            close(targets)
        if options["action"] == "status" and options["json"]:
            write_json(self.stdout, statuses[0] if len(statuses) == 1 else statuses)

    def _act(self, target: Target, options: dict[str, Any], *, fleet: bool) -> dict[str, Any]:
        """The action on one host's server (each host of a fleet in turn)."""
        action = options["action"]
        where = f"{target.host.name}: " if fleet else ""
        try:
            if action != "stop":  # stopping must work whatever state the database is in
                warn_if_database_differs(self, target)
            if action == "status":
                status = target.server.status()
                if not options["json"]:
                    self.stdout.write(f"{where}{target.env.name}: {status.detail}")
                row: dict[str, Any] = {"running": status.running, "pid": status.pid}
                return {"host": target.host.name, **row} if fleet else row
            if action == "stop":
                self.stdout.write(where + target.server.stop())
                return {}
            current = target.layout.current_release(target.host)
            if current is None:
                raise CommandError(
                    f"{where}Nothing is deployed to {target.env.name!r} yet: run manage.py "
                    f"deploy --env={target.env.name} first."
                )
            release = target.release(current)
            method = target.server.start if action == "start" else target.server.reload
            self.stdout.write(where + method(release))
            return {}
        except StepFailed as error:
            raise CommandError(f"{where}{error}\n{error.output}".strip()) from None
        except PipelineError as error:
            raise CommandError(where + str(error)) from None
