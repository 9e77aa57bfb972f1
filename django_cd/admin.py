"""The deploy history in the admin: read-only, since the host's files are the truth."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest

from django_cd.models import Deployment


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("at", "environment", "action", "release", "status", "deployed_by")
    list_filter = ("environment", "action", "status")
    search_fields = ("release", "commit", "deployed_by")
    date_hierarchy = "at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Deployment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


if apps.is_installed("waffle"):
    # The "Feature switches" panel registers itself; it needs django-waffle.
    from django_cd.flags import admin as _flags_admin  # noqa: F401
