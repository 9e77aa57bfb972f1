"""The "Feature switches" panel in the Django admin.

Every flag with its state in words, one-click on and off, a percentage, who
changed it last, which are stale or undeclared, and the latest changes. Users
with waffle's change permission on flags may change; view permission reads.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from django_cd.flags import changes, lifecycle
from django_cd.flags.errors import FlagError
from django_cd.models import FlagRule

ACTIONS = ("on", "off", "percent")
HISTORY_ROWS = 20


def can_change(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.has_perm("waffle.change_flag")


def can_view(request: HttpRequest) -> bool:
    return can_change(request) or (
        request.user.is_active and request.user.has_perm("waffle.view_flag")
    )


@admin.register(FlagRule)
class FeatureSwitchAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """One page instead of a changelist (admin/django_cd/feature_switches.html)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_change(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not can_view(request):
            return self._forbidden()
        if request.method == "POST":
            if not can_change(request):
                return self._forbidden()
            self._change(request)
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": "Feature switches",
            "opts": self.model._meta,
            "flags": lifecycle.listing(),
            "history": changes.history(limit=HISTORY_ROWS),
            "can_change": can_change(request),
        }
        return TemplateResponse(request, "admin/django_cd/feature_switches.html", context)

    def _forbidden(self) -> HttpResponse:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied

    def _change(self, request: HttpRequest) -> None:
        action, name = request.POST.get("action", ""), request.POST.get("name", "")
        audit = {
            "by": request.user.get_username(),
            "reason": request.POST.get("reason", "").strip(),
            "source": "admin",
        }
        try:
            if action == "on":
                changes.turn_on(name, **audit)
            elif action == "off":
                changes.turn_off(name, **audit)
            elif action == "percent":
                changes.set_percent(name, request.POST.get("percent", ""), **audit)
            else:
                raise FlagError(f"Unknown action {action!r}; use {', '.join(ACTIONS)}.")
        except FlagError as error:
            messages.error(request, str(error))
            return
        messages.success(request, f"{name}: {action} saved.")
