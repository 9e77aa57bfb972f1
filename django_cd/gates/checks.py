"""System checks of the gates' settings (ids django_cd.E075-E076, docs/checks.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register

from django_cd import conf
from django_cd.gates import deployers, window


@register("django_cd")
def check_gates(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``deploy_window`` reads as a window, and ``deployers`` entries have known kinds."""
    envs = conf.get_config()["ENVIRONMENTS"]
    if not isinstance(envs, Mapping):
        return []
    errors: list[CheckMessage] = []
    for name, env in envs.items():
        if not isinstance(env, Mapping):
            continue
        text = env.get("deploy_window")
        if isinstance(text, str):
            try:
                window.parse(text)
            except window.BadWindow as error:
                errors.append(
                    Error(
                        f"Environment {name!r}: deploy_window {error}",
                        hint="Write ranges 'DAYS HH:MM-HH:MM [ZONE]' separated by commas, "
                        "e.g. 'mon-thu 09:00-16:00 Europe/Warsaw'.",
                        id="django_cd.E075",
                    )
                )
        entries = env.get("deployers", [])
        if isinstance(entries, list | tuple) and all(isinstance(e, str) for e in entries):
            for entry in deployers.bad_entries(entries):
                errors.append(
                    Error(
                        f"Environment {name!r}: deployer {entry!r} has an unknown kind.",
                        hint="Use 'user:NAME', 'git:NAME-OR-EMAIL', 'ci:NAME' or a bare name.",
                        id="django_cd.E076",
                    )
                )
    return errors
