"""System checks for django-cd. Every id is listed once in docs/checks.md."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from django_cd import conf


@register("django_cd")
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report every problem in ``DJANGO_CD`` (docs/checks.md lists each id)."""
    return [
        (Warning if p.is_warning else Error)(p.msg, hint=p.hint, id=p.id) for p in conf.validate()
    ]


@register("django_cd")
def check_modules_in_repository(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Each environment's ``settings`` and ``server.wsgi`` modules can be imported in a
    release: a release imports from the directory of ``manage.py`` and from the
    repository root (or from installed packages). Checked in the checkout, before
    any deploy (E155)."""
    root = _repository_root()
    if root is None:
        return []
    try:
        envs = conf.environments()
    except Exception:  # an invalid DJANGO_CD is reported by check_settings
        return []
    found: list[CheckMessage] = []
    for env in envs.values():
        places = [root / Path(env.manage).parent, root]
        wsgi = env.server.get("wsgi")
        modules = [("settings", env.settings)]
        if isinstance(wsgi, str):
            modules.append(("server wsgi", wsgi.partition(":")[0]))
        for what, module in modules:
            if _importable(module, places):
                continue
            looked = " or ".join(
                str(place / (module.replace(".", "/") + ".py")) for place in dict.fromkeys(places)
            )
            found.append(
                Error(
                    f"Environment {env.name!r}: the {what} module {module!r} will not import "
                    f"in a release: there is no {looked}, and it is not an installed package.",
                    hint="Give the module's dotted path from the directory of manage.py (the "
                    "environment's 'manage') or from the repository root, e.g. "
                    "'myproject.settings.staging' or 'myproject.wsgi'.",
                    id="django_cd.E155",
                )
            )
    return found


def _repository_root() -> Path | None:
    configured = conf.get_config().get("REPOSITORY")
    start = Path(configured or getattr(settings, "BASE_DIR", "") or ".").resolve()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def _importable(module: str, places: list[Path]) -> bool:
    relative = Path(*module.split("."))
    for place in places:
        if (place / relative).with_suffix(".py").is_file() or (
            place / relative / "__init__.py"
        ).is_file():
            return True
    # Installed: a package in site-packages, as the release's requirements install it
    # (not a directory some path of this process happens to reach).
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return False
    origin = spec.origin if spec is not None else None
    parts = Path(origin).parts if origin else ()
    return "site-packages" in parts or "dist-packages" in parts
