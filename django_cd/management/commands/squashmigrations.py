"""``squashmigrations`` that points ``version.txt`` at the app's leaf afterwards."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import squashmigrations

from django_cd.migration_version import update_versions


class Command(squashmigrations.Command):
    help = squashmigrations.Command.help + " Keeps migrations/version.txt current."

    def handle(self, **options: Any) -> None:
        super().handle(**options)
        for written in update_versions([options["app_label"]]):
            if options["verbosity"] >= 1:
                self.stdout.write(f"  {written.app.version_path}: {written.name}")
