"""``squashmigrations`` that points ``version.txt`` at the app's leaf afterwards."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import squashmigrations

from django_cd.migration_version import update_versions
from django_cd.migration_version.checks import tags_but_version_files


class Command(squashmigrations.Command):
    help = squashmigrations.Command.help + " Keeps migrations/version.txt current."

    @property
    def requires_system_checks(self) -> list[str]:  # type: ignore[override]
        # Every check but the version-file ones: this command is how they get fixed.
        return tags_but_version_files()

    def handle(self, **options: Any) -> None:
        super().handle(**options)
        for written in update_versions([options["app_label"]]):
            if options["verbosity"] >= 1:
                self.stdout.write(f"  {written.app.version_path}: {written.name}")
