"""``manage.py cdinit [--env NAME ...] [--server ...] [--write]``: set a project up for
django-cd. Without ``--write`` it only shows what it would change.

Exit status: 0 when the changes were shown, written, or nothing was left to do;
1 when the project cannot be set up as it is (not a git repository, no
``manage.py``), or ``--write`` left lines the user must add by hand.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd.cdinit import SERVERS, Plan, ProjectError, inspect_project, make_plan


class Command(BaseCommand):
    help = (
        "Set the project up for django-cd: DJANGO_CD, INSTALLED_APPS, MIDDLEWARE, the "
        "requirement line and a shared/.env template per environment. Shows a diff; "
        "--write applies it."
    )
    # It must run on a project whose django-cd settings are missing or wrong.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--env",
            action="append",
            dest="envs",
            metavar="NAME",
            help="An environment to define (repeat for several; default: staging).",
        )
        parser.add_argument(
            "--server",
            default="gunicorn",
            choices=SERVERS,
            help="The app server (default gunicorn; command: your own reload command).",
        )
        parser.add_argument("--write", action="store_true", help="Apply the changes.")
        parser.add_argument(
            "--root",
            type=Path,
            help="The directory holding the environments' deploy roots, outside the "
            "repository (default ~/deploys/<project>).",
        )
        parser.add_argument(
            "--port", type=int, default=8001, help="The first port to bind (default 8001)."
        )
        parser.add_argument(
            "--no-backup",
            action="store_true",
            help="No database backup before migrations (by default there is one when "
            "django-dbbackup is installed: it goes into INSTALLED_APPS and the requirements).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        envs = list(dict.fromkeys(options["envs"] or ["staging"]))
        try:
            facts = inspect_project()
            plan = make_plan(
                facts,
                envs,
                options["server"],
                options["root"],
                options["port"],
                backup=False if options["no_backup"] else None,
            )
            if options["verbosity"] >= 1:
                self._describe(plan)
            if plan.empty:
                self.stdout.write(
                    self.style.SUCCESS(f"Nothing to do: {facts.name} is set up for django-cd.")
                )
                self._notes(plan)
                return
            self.stdout.write(plan.diff(), ending="")
            if options["write"]:
                plan.apply()
        except ProjectError as error:
            raise CommandError(str(error)) from None
        self._manual(plan)
        self._notes(plan)
        if not options["write"]:
            self.stdout.write("Nothing was written: run again with --write to apply this.")
            return
        if not plan.backup:
            self.stdout.write(
                "No backups before migrations: django-dbbackup is not installed here "
                "(or --no-backup). pip install 'django-cd-deploy[backup]' and run cdinit "
                "again on a new project, or see docs/cdinit.md."
            )
        written = ", ".join(str(change.path) for change in plan.changes) or "nothing"
        self.stdout.write(self.style.SUCCESS(f"Written: {written}."))
        if plan.manual:
            raise CommandError(
                f"{len(plan.manual)} change(s) could not be made with certainty: add the "
                "lines shown above yourself, then run cdinit again to check."
            )
        self._next_steps(plan)

    def _describe(self, plan: Plan) -> None:
        facts = plan.facts
        database = facts.database
        engine = str(database.get("ENGINE", "?")).rpartition(".")[2]
        where = " (inside the repository)" if facts.inside_repo(database.get("NAME")) else ""
        lines = [
            f"Project {facts.name}: repository {facts.repo_root}, manage.py at {facts.manage}",
            f"  settings {facts.settings_module}, WSGI {facts.wsgi_module or '-'}, "
            f"ASGI {facts.asgi_module or '-'}",
            f"  database: {engine} {database.get('NAME', '')}{where}",
            f"  requirements: {', '.join(facts.requirements) or 'none yet'}",
            f"  STATIC_ROOT {facts.static_root or 'unset'}, "
            f"MEDIA_ROOT {facts.media_root or 'unset'}",
        ]
        self.stdout.write("\n".join(lines))

    def _manual(self, plan: Plan) -> None:
        for edit in plan.manual:
            self.stdout.write(
                self.style.WARNING(f"Add to {edit.path} yourself ({edit.reason}):")
                + "\n"
                + "".join(f"    {line}\n" for line in edit.lines.splitlines()),
                ending="",
            )

    def _notes(self, plan: Plan) -> None:
        for note in plan.notes:
            self.stdout.write(note)

    def _next_steps(self, plan: Plan) -> None:
        env = next(iter(plan.env_files), "staging")
        steps = [
            "Next:",
            *(f"  give each variable in {path} a value" for path in plan.env_files.values()),
            "  commit the changes (git add -A && git commit)",
            f"  python manage.py deploy --env={env}",
        ]
        self.stdout.write("\n".join(steps))
