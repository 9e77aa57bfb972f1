"""System checks of the settings a release runs with (E150-E159).

The engine runs every command of a release with ``DJANGO_CD_RELEASE_DIR`` (the
release directory) and ``DJANGO_CD_NEEDS`` (what the deploy will ask of the
release: ``collectstatic``, ``dbbackup``) set, and ``check --deploy`` is
both a predeploy gate (in a scratch copy of the release, before anything
changes) and the deploy's ``check`` step. These checks catch there what would
otherwise first go wrong after the switch: data written inside a release that
the next deploy leaves behind, a release the engine cannot recognise when it
answers, a step that cannot run. In a developer's checkout (no release) they
say nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from django_cd import conf

RELEASE_DIR_VARIABLE = "DJANGO_CD_RELEASE_DIR"
NEEDS_VARIABLE = "DJANGO_CD_NEEDS"
MIDDLEWARE = "django_cd.middleware.ReleaseHeaderMiddleware"


@register("django_cd")
def check_release_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    release = os.environ.get(RELEASE_DIR_VARIABLE)
    if not release:
        return []
    needs = os.environ.get(NEEDS_VARIABLE, "").split(",")
    return [
        *_data_inside(Path(release).resolve()),
        *_middleware(),
        *(_static_root() if "collectstatic" in needs else []),
        *(_backup_app() if "dbbackup" in needs else []),
    ]


def needs(env: conf.Environment) -> str:
    """What a deploy of ``env`` asks of a release, for ``DJANGO_CD_NEEDS``."""
    skipped = {step.name for step in env.steps if step.skip}
    return ",".join(
        [
            *(["collectstatic"] if "collectstatic" not in skipped else []),
            *(["dbbackup"] if env.backup != "never" else []),
        ]
    )


def _inside(path: Any, root: Path) -> bool:
    if not path or str(path) == ":memory:" or str(path).startswith("file:"):
        return False
    return Path(path).resolve().is_relative_to(root)


def _data_inside(root: Path) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    for alias, database in settings.DATABASES.items():
        if "sqlite" in database.get("ENGINE", "") and _inside(database.get("NAME"), root):
            found.append(
                Error(
                    f"The SQLite database {alias!r} ({database['NAME']}) is inside the "
                    "release: every deploy would start from an empty database, and the "
                    "data would be removed with the release.",
                    hint="Point it outside the release, e.g. DATABASE_URL=sqlite:////srv/"
                    "<project>/<env>/shared/db.sqlite3 in shared/.env (or the database "
                    "server's URL).",
                    id="django_cd.E150",
                )
            )
    if _inside(getattr(settings, "MEDIA_ROOT", ""), root):
        found.append(
            Error(
                f"MEDIA_ROOT ({settings.MEDIA_ROOT}) is inside the release: uploaded files "
                "would be gone after the next deploy.",
                hint="Read MEDIA_ROOT from the environment and point it at the deploy "
                "root's shared/ (e.g. /srv/<project>/<env>/shared/media) or use a storage "
                "service.",
                id="django_cd.E151",
            )
        )
    return found


def _middleware() -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if middleware[:1] == [MIDDLEWARE]:
        return []
    where = "is not in MIDDLEWARE" if MIDDLEWARE not in middleware else "is not first"
    return [
        Error(
            f"{MIDDLEWARE} {where}: the deploy recognises the new release by the "
            "X-Release header it adds, and would wait for it and roll back.",
            hint=f"Put {MIDDLEWARE!r} first in MIDDLEWARE (first, so answers of every "
            "other middleware carry it too).",
            id="django_cd.E152",
        )
    ]


def _static_root() -> list[CheckMessage]:
    if getattr(settings, "STATIC_ROOT", None):
        return []
    return [
        Error(
            "STATIC_ROOT is not set, and the deploy runs collectstatic.",
            hint="Set STATIC_ROOT in the deployed settings (e.g. BASE_DIR / 'static': "
            "inside the release is right for collected files), or skip the step: "
            "{'name': 'collectstatic', 'skip': True} in the environment's steps.",
            id="django_cd.E153",
        )
    ]


def _backup_app() -> list[CheckMessage]:
    if apps.is_installed("dbbackup"):
        return []
    return [
        Error(
            "The environment backs up the database before migrations (its 'backup' is "
            "not 'never'), but django-dbbackup ('dbbackup') is not in INSTALLED_APPS.",
            hint="Add django-cd-deploy[backup] (django-dbbackup) to the release's requirements "
            "and 'dbbackup' to INSTALLED_APPS, or set 'backup': 'never' for this environment.",
            id="django_cd.E154",
        )
    ]
