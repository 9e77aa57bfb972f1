"""The health URL, on django-health-check: database, cache, storage, and django-cd's own.

``path("health/", include("django_cd.health"))`` gives

- ``health/``: readiness. Every check; 200 when all pass, 500 otherwise; JSON
  with ``?format=json`` or ``Accept: application/json``. A load balancer sends
  traffic only to a process that answers 200 here.
- ``health/live/``: liveness. 200 while the process can answer at all, touching
  neither the database nor the cache: a supervisor restarts a process that stops
  answering here, not one whose database is down (a restart would not help).

django-cd's checks: the applied migrations match each first-party app's
``migrations/version.txt`` (the code and the schema belong together), and the
release id that serves, shown in the check's name.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.http import HttpRequest, JsonResponse
from django.urls import path
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from django_cd.middleware import release_id
from django_cd.migration_version.files import Status, read_version
from django_cd.migration_version.firstparty import versioned_apps


class MigrationVersions(HealthCheck):
    """Each first-party app's ``version.txt`` names a migration the database applied."""

    def __repr__(self) -> str:
        return "Migrations match version.txt"

    def run(self) -> None:
        applied = MigrationRecorder(connection).applied_migrations()
        loader = MigrationLoader(None, ignore_no_migrations=True)
        behind = []
        for app in versioned_apps(loader):
            version = read_version(app.version_path)
            if version.status is Status.OK and (app.label, version.name) not in applied:
                behind.append(f"{app.label}.{version.name}")
        if behind:
            raise ServiceUnavailable(f"not applied: {', '.join(behind)}")


class Release(HealthCheck):
    """Names the release that serves, in the check's name; never fails."""

    def __repr__(self) -> str:
        return f"Release {release_id() or '(not deployed)'}"

    def run(self) -> None:
        return None


#: The readiness checks, in the order they are shown.
CHECKS: list[Any] = [
    "health_check.checks.Database",
    "health_check.checks.Cache",
    "health_check.checks.Storage",
    MigrationVersions,
    Release,
]


def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No database, no cache."""
    response = JsonResponse({"status": "alive", "release": release_id()})
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("", HealthCheckView.as_view(checks=CHECKS), name="health"),
    path("live/", live, name="health-live"),
]
