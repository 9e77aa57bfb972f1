"""System checks for version files (ids django_cd.E030-E049, docs/checks.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, register
from django.core.checks.registry import registry

from django_cd import conf
from django_cd.conf import Problem
from django_cd.migration_version.errors import MigrationVersionError
from django_cd.migration_version.firstparty import versioned_apps
from django_cd.migration_version.versions import load_graph, version_problems
from django_cd.project import is_site_package


def first_party_setting_problems() -> list[Problem]:
    """Entries of FIRST_PARTY_APPS that cannot be first-party (E037, E038)."""
    listed = conf.get_config()["FIRST_PARTY_APPS"]
    if not isinstance(listed, list | tuple):
        return []  # conf.validate() reports the type (E006)
    problems = []
    for label in listed:
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            problems.append(
                Problem(
                    "django_cd.E037",
                    f"DJANGO_CD['FIRST_PARTY_APPS'] names {label!r}, which is not an "
                    "installed app label.",
                    "Use app labels (AppConfig.label, e.g. 'notes'), not module paths.",
                )
            )
            continue
        if is_site_package(app_config.path):
            problems.append(
                Problem(
                    "django_cd.E038",
                    f"DJANGO_CD['FIRST_PARTY_APPS'] names {label!r}, which is installed in "
                    "site-packages; django-cd never writes version files there.",
                    f"Remove {label!r}, or install the app from your checkout (pip install -e).",
                )
            )
    return problems


def version_file_problems(app_configs: Sequence[AppConfig] | None = None) -> list[Problem]:
    """Every version-file problem of the first-party apps (restricted to ``app_configs``)."""
    try:
        loader = load_graph()
    except MigrationVersionError:
        return []  # a broken graph is reported by Django's own migrate/makemigrations
    wanted = None if app_configs is None else {a.label for a in app_configs}
    return [
        problem
        for app in versioned_apps(loader)
        if wanted is None or app.label in wanted
        for problem in version_problems(app, loader)
    ]


#: The tag of these checks: makemigrations and squashmigrations run every other
#: check, so that they still work while a version file is stale or conflicted.
VERSION_FILES_TAG = "django_cd_version_files"


def tags_but_version_files() -> list[str]:
    """Every registered check tag except this module's."""
    return sorted(set(registry.tags_available()) - {VERSION_FILES_TAG})


@register(VERSION_FILES_TAG)
def check_version_files(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report missing, conflicted or stale ``migrations/version.txt`` files."""
    problems = first_party_setting_problems() + version_file_problems(app_configs)
    return [Error(p.msg, hint=p.hint, id=p.id) for p in problems]
