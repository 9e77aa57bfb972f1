"""System checks for django-cd. Every id is listed once in docs/checks.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register

from django_cd import conf


@register("django_cd")
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report every problem in ``DJANGO_CD`` (ids django_cd.E001-E019)."""
    return [Error(p.msg, hint=p.hint, id=p.id) for p in conf.validate()]
