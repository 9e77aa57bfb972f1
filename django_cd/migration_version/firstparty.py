"""Which apps are first-party, and where their migrations package is.

Which apps are first-party is decided by :func:`django_cd.project.is_first_party`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from django.apps import apps
from django.db.migrations.loader import MigrationLoader

from django_cd.migration_version.errors import MigrationVersionError
from django_cd.project import base_dir, is_first_party, is_site_package

VERSION_FILE = "version.txt"


@dataclass(frozen=True)
class VersionedApp:
    """A first-party app with a migrations package, and its ``version.txt``."""

    label: str
    migrations_dir: Path

    @property
    def version_path(self) -> Path:
        return self.migrations_dir / VERSION_FILE


def migrations_dir(app_label: str) -> Path | None:
    """The directory of the app's migrations package, or None when it has none."""
    module_name, _explicit = MigrationLoader.migrations_module(app_label)
    if module_name is None:
        return None
    try:
        module = import_module(module_name)
    except ModuleNotFoundError:
        return None
    file = getattr(module, "__file__", None)
    # A namespace package (no __init__.py) is not loaded by Django's loader either.
    return Path(file).parent if file else None


def versioned_apps(loader: MigrationLoader) -> list[VersionedApp]:
    """First-party apps that have at least one migration, in INSTALLED_APPS order."""
    with_migrations = {label for label, _name in loader.disk_migrations}
    found = []
    for app_config in apps.get_app_configs():
        if app_config.label in with_migrations and is_first_party(app_config):
            directory = migrations_dir(app_config.label)
            if directory is not None:
                found.append(VersionedApp(app_config.label, directory))
    return found


def require_app(label: str) -> VersionedApp:
    """The first-party app ``label``, or a ``MigrationVersionError`` saying why not."""
    try:
        app_config = apps.get_app_config(label)
    except LookupError:
        raise MigrationVersionError(
            f"No installed app has the label {label!r}. "
            "Use an app label from INSTALLED_APPS, e.g. 'notes'."
        ) from None
    if is_site_package(app_config.path):
        raise MigrationVersionError(
            f"App {label!r} is installed in site-packages ({app_config.path}); "
            "django-cd never writes into installed packages. Name one of your own apps."
        )
    if not is_first_party(app_config):
        raise MigrationVersionError(
            f"App {label!r} is not first-party: its code ({app_config.path}) is not under "
            f"BASE_DIR ({base_dir()}). Add {label!r} to DJANGO_CD['FIRST_PARTY_APPS'] "
            "if django-cd should keep its version.txt."
        )
    directory = migrations_dir(label)
    if directory is None:
        module_name, _explicit = MigrationLoader.migrations_module(label)
        raise MigrationVersionError(
            f"App {label!r} has no migrations package ({module_name}). "
            f"Create its first migration with: manage.py makemigrations {label}"
        )
    return VersionedApp(label, directory)
