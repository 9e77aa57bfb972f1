"""``makemigrations`` that keeps each first-party app's ``migrations/version.txt`` current.

A project with its own ``makemigrations`` subclasses this ``Command`` instead
of Django's (docs/migrations.md).
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import makemigrations
from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader

from django_cd.migration_version import update_versions
from django_cd.migration_version.checks import tags_but_version_files


class Command(makemigrations.Command):
    help = makemigrations.Command.help + " Keeps migrations/version.txt current."

    @property
    def requires_system_checks(self) -> list[str]:  # type: ignore[override]
        # Every check but the version-file ones: this command is how they get fixed.
        return tags_but_version_files()

    def handle(self, *app_labels: Any, **options: Any) -> None:
        self.touched_apps: set[str] = set()
        super().handle(*app_labels, **options)
        if self.dry_run:
            return
        for written in update_versions(self.touched_apps):
            if self.verbosity >= 1:
                self.log(f"  {written.app.version_path}: {written.name}")

    def write_migration_files(
        self,
        changes: dict[str, list[Migration]],
        update_previous_migration_paths: dict[str, str] | None = None,
    ) -> None:
        super().write_migration_files(changes, update_previous_migration_paths)
        self.touched_apps.update(changes)

    def handle_merge(self, loader: MigrationLoader, conflicts: dict[str, list[str]]) -> None:
        super().handle_merge(loader, conflicts)
        self.touched_apps.update(conflicts)
