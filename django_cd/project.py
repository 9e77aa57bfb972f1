"""The project django-cd serves: its base directory and which apps are its own.

An app is first-party when its code lives under ``settings.BASE_DIR`` or its
label is listed in ``DJANGO_CD["FIRST_PARTY_APPS"]``, and it is not installed
in a site-packages directory: django-cd never writes into installed packages,
even when a virtualenv sits inside the project. Migration version files and the
test-pipeline checks both look only at first-party apps.
"""

from __future__ import annotations

import site
import sysconfig
from functools import cache
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings

from django_cd import conf


@cache
def _site_dirs() -> tuple[Path, ...]:
    dirs = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    dirs.update(site.getsitepackages())
    return tuple(Path(d).resolve() for d in dirs if d)


def is_site_package(path: str | Path) -> bool:
    """True when ``path`` is inside a site-packages (or dist-packages) directory."""
    resolved = Path(path).resolve()
    if {"site-packages", "dist-packages"} & set(resolved.parts):
        return True
    return any(resolved.is_relative_to(d) for d in _site_dirs())


def base_dir() -> Path | None:
    """``settings.BASE_DIR`` resolved, or None when the project does not set it."""
    value = getattr(settings, "BASE_DIR", None)
    return Path(value).resolve() if value else None


def is_first_party(app_config: AppConfig) -> bool:
    """True when the app is the project's own (see the module docstring)."""
    if is_site_package(app_config.path):
        return False
    if app_config.label in conf.get_config()["FIRST_PARTY_APPS"]:
        return True
    base = base_dir()
    return base is not None and Path(app_config.path).resolve().is_relative_to(base)
