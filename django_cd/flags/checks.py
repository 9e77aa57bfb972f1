"""System checks of the flags layer (ids E100-E119, W100-W119; docs/checks.md)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks

from django_cd import conf
from django_cd.flags.declarations import declared, problems

PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register()
def check_declarations(**kwargs: Any) -> list[checks.CheckMessage]:
    raw = conf.get_config().get("FLAGS", {})
    found: list[checks.CheckMessage] = []
    if raw and not apps.is_installed("waffle"):
        found.append(
            checks.Error(
                "DJANGO_CD['FLAGS'] declares flags but django-waffle is not installed.",
                hint="pip install 'django-cd-deploy[flags]' and add 'waffle' to INSTALLED_APPS.",
                id="django_cd.E100",
            )
        )
    for name, message in problems(raw):
        where = f"Flag {name!r}: " if name else ""
        found.append(
            checks.Error(
                f"{where}{message}",
                hint="docs/flags.md shows a declaration: description, owner, kind, expires.",
                id="django_cd.E101",
            )
        )
    for declaration in declared().values():
        if declaration.kind == "release" and declaration.expired():
            found.append(
                checks.Warning(
                    f"Release flag {declaration.name!r} expired on {declaration.expires} "
                    f"(owner: {declaration.owner or 'nobody'}).",
                    hint="Remove the flag and the code paths it guards, or move its expiry "
                    "date; `manage.py flags stale` lists every expired flag.",
                    id="django_cd.W100",
                )
            )
    return found


@checks.register(deploy=True)
def check_cache(**kwargs: Any) -> list[checks.CheckMessage]:
    if not apps.is_installed("waffle"):
        return []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared between processes: "
            "a flag changed by `manage.py flags` or in another worker is not seen by this one "
            "until it restarts.",
            hint="Use a shared cache (Redis, Memcached, FileBasedCache) as CACHES['default'].",
            id="django_cd.W101",
        )
    ]
