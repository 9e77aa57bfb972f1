import sys
from typing import Any

from django.apps import AppConfig, apps


class DjangoCDConfig(AppConfig):
    name = "django_cd"
    verbose_name = "Continuous deployment"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: Any) -> None:
        super().__init__(app_name, app_module)
        # `manage.py test --coverage` measures from here, before Django imports
        # the apps' models: the runner itself only starts after that.
        if sys.argv[1:2] == ["test"] and "--coverage" in sys.argv:
            from django_cd.testing.coverage_session import start_early

            start_early()

    def ready(self) -> None:
        from django_cd import (
            checks,  # noqa: F401  (registers the system checks)
            release_checks,  # noqa: F401
        )

        # The flags layer stands on django-waffle; without it, only its checks load
        # (they say how to install it when DJANGO_CD["FLAGS"] declares flags).
        from django_cd.flags import checks as flags_checks  # noqa: F401
        from django_cd.gates import checks as _gate_checks  # noqa: F401
        from django_cd.instances import checks as instance_checks  # issue 15
        from django_cd.migration_version import checks as _version_checks  # noqa: F401
        from django_cd.testing import checks as testing_checks  # noqa: F401

        instance_checks.connect()  # issue 15: --env=<template>.<instance>

        if apps.is_installed("waffle"):
            from django_cd.flags import signals

            signals.connect()
