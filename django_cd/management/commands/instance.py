"""``manage.py instance create|deploy|refresh|destroy|list|prune``: testing instances.

Each instance of a template environment (one with ``instances``) is
``<template>.<name>``: its own root, app server, URL and a fresh copy of the
``database_from`` environment's database (docs/instances.md).

Exit status: 0 done; 1 refused or failed (the message says which and what to do).
"""

from __future__ import annotations

import re
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd import conf
from django_cd.instances.config import InstanceError, Template
from django_cd.instances.lifecycle import Instances, Result
from django_cd.management.commands._output import (
    engine_errors,
    environment,
    failure,
    step_printer,
    write_json,
)

DURATION = re.compile(r"^(\d+)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    """``7d``, ``12h``, ``30m``: seconds."""
    match = DURATION.match(text.strip())
    if not match:
        raise CommandError(
            f"--older-than {text!r} is not a duration: use a number and a unit s, m, h, d "
            "or w, e.g. 7d."
        )
    return int(match.group(1)) * SECONDS[match.group(2)]


class Command(BaseCommand):
    help = "Create, deploy, refresh, destroy, list or prune testing instances of a template."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)

        def action(name: str, help_text: str, named: bool = True) -> ArgumentParser:
            sub: ArgumentParser = actions.add_parser(name, help=help_text)
            sub.add_argument(
                "--env",
                required=name not in ("list",),
                help="The template environment, e.g. testing.",
            )
            if named:
                sub.add_argument("name", help="The instance, e.g. feature-login or pr-123.")
            sub.add_argument("--json", action="store_true", help="Print one JSON object.")
            sub.add_argument(
                "--break-lock", action="store_true", help="Break a stale instance lock."
            )
            return sub

        create = action("create", "A new instance of a branch on a fresh database copy.")
        create.add_argument("--ref", required=True, help="The branch (or tag, commit).")
        create.add_argument("--port", type=int, default=None, help="A port of the range.")
        create.add_argument(
            "--or-refresh",
            action="store_true",
            help="If the instance exists, refresh it instead (for CI jobs).",
        )
        for name, text in (
            ("deploy", "Deploy the instance's branch (its new commits)."),
            ("refresh", "A fresh copy of the source database, then the branch deployed."),
        ):
            action(name, text).add_argument(
                "--ref", default=None, help="Deploy this ref from now on (default: its own)."
            )
        action("destroy", "Stop the server, drop the database, remove the root.")
        action("list", "Every instance with branch, commit, URL, database, age.", named=False)
        prune = action("prune", "Destroy idle instances, or those whose branch is gone.", False)
        prune.add_argument("--older-than", default=None, help="E.g. 7d, 12h.")
        prune.add_argument(
            "--gone", action="store_true", help="Also those whose branch no longer exists."
        )
        prune.add_argument("--dry-run", action="store_true", help="Only say which.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list(options)
            return
        as_json = options["json"]
        instances = self._instances(options["env"], options)
        with engine_errors(f"Interrupted: see manage.py instance list --env={options['env']}."):
            try:
                if action == "prune":
                    self._prune(instances, options)
                    return
                name = options["name"]
                if action == "destroy":
                    message = instances.destroy(name)
                    if as_json:
                        write_json(self.stdout, {"destroyed": name, "detail": message})
                    else:
                        self.stdout.write(message)
                    return
                if action == "create":
                    result = instances.create(
                        name,
                        options["ref"],
                        port=options["port"],
                        or_refresh=options["or_refresh"],
                    )
                elif action == "deploy":
                    result = instances.deploy(name, options["ref"])
                else:
                    result = instances.refresh(name, options["ref"])
            except InstanceError as error:
                raise CommandError(str(error)) from None
        self._report(result, as_json)

    def _instances(self, env_name: str, options: dict[str, Any]) -> Instances:
        env = environment(env_name)
        try:
            template = Template.of(env)
        except InstanceError as error:
            raise CommandError(str(error)) from None
        printer = None if options["json"] else step_printer(self, options["verbosity"])
        return Instances(template, on_step=printer, break_lock=options["break_lock"])

    def _report(self, result: Result, as_json: bool) -> None:
        if as_json:
            write_json(self.stdout, result.as_dict())
        outcome = result.outcome
        if outcome is not None and outcome.status != "success":
            error = failure(outcome)
            raise CommandError(
                f"{error}\nInstance {result.env} is kept to look at: fix the branch and run "
                f"manage.py instance deploy --env={result.env.split('.')[0]} {result.name}, "
                "or destroy it."
            )
        if not as_json:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Instance {result.env} ({result.ref}) {result.action}d in "
                    f"{result.seconds:.1f} s; database {result.database} "
                    f"({result.copy.get('method', 'kept')})."
                )
            )
            self.stdout.write(f"URL: {result.url}")

    def _list(self, options: dict[str, Any]) -> None:
        if options["env"]:
            groups = [self._instances(options["env"], options)]
        else:
            with engine_errors():
                envs = [e for e in conf.environments().values() if e.instances is not None]
                groups = [self._instances(e.name, options) for e in envs]
        rows = [row for group in groups for row in group.listing()]
        if options["json"]:
            write_json(self.stdout, rows)
            return
        if not rows:
            self.stdout.write("No instances.")
            return
        for row in rows:
            answers = "answers" if row["answers"] else "DOES NOT ANSWER"
            self.stdout.write(
                f"{row['env']:<28} {row['ref']:<24} {str(row['commit'] or '-')[:10]:<10} "
                f"{row['url']:<32} {row['database']:<24} {_age(row['age_seconds']):>6} "
                f"{row['status']:<8} {answers}"
            )

    def _prune(self, instances: Instances, options: dict[str, Any]) -> None:
        if options["older_than"] is None and not options["gone"]:
            raise CommandError("Say which instances to prune: --older-than 7d, --gone, or both.")
        older_than = duration(options["older_than"]) if options["older_than"] else None
        removed = instances.prune(older_than, gone=options["gone"], dry_run=options["dry_run"])
        if options["json"]:
            write_json(self.stdout, {"pruned": removed, "dry_run": options["dry_run"]})
            return
        verb = "Would destroy" if options["dry_run"] else "Destroyed"
        self.stdout.write(f"{verb} {len(removed)} instance(s): {', '.join(removed) or 'none'}")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
