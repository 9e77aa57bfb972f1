"""``manage.py responsecounts``: the responses a release served, by status class.

Run by the deploy's watch inside the new release (its settings, its cache);
useful by hand too. Prints JSON: ``{"release", "counting", "counts": {"2xx", ...}}``.
Exit status: 0, or 1 when no release id is known (not run from a release).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd.management.commands._output import write_json
from django_cd.middleware import release_id
from django_cd.smoke import counter


class Command(BaseCommand):
    help = "Print the responses a release served, by status class (JSON)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--release", help="The release id (default: this release).")

    def handle(self, *args: Any, **options: Any) -> None:
        release = options["release"] or release_id()
        if not release:
            raise CommandError(
                "No release id: run this in a deployed release, or pass --release ID."
            )
        write_json(
            self.stdout,
            {
                "release": release,
                "counting": counter.installed(),
                "counts": counter.counts(release),
            },
        )
