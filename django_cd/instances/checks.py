"""System checks of the templates of testing instances (django_cd.E140-E149, W140-W149)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning, register

from django_cd import conf
from django_cd.instances import config


@register("django_cd")
def check_instances(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report every problem of every environment's ``instances`` dict."""
    return [
        (Warning if p.is_warning else Error)(p.msg, hint=p.hint, id=p.id)
        for p in config.validate()
    ]


def resolve(env_name: str) -> conf.Environment | None:
    """``<template>.<instance>`` as an environment; the engine is imported only when asked."""
    from django_cd.instances.lifecycle import resolve as resolve_instance

    return resolve_instance(env_name)


def connect() -> None:
    """Let ``--env=<template>.<instance>`` name an instance in every deploy command."""
    if resolve not in conf.DERIVED_ENVIRONMENTS:
        conf.DERIVED_ENVIRONMENTS.append(resolve)
