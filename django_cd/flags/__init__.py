"""Feature flags over django-waffle: one API, gargoyle's conditions, audit, snapshots.

::

    from django_cd import flags

    if flags.is_active("new_checkout", request):
        ...

Everything here is documented in docs/flags.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_cd.flags.errors import FlagError, UnknownFlag

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = [
    "FlagError",
    "FlagRequiredMixin",
    "UnknownFlag",
    "flag_required",
    "is_active",
    "override_flag",
    "restore",
    "snapshot",
]


def is_active(name: str, request: HttpRequest | None = None) -> bool:
    """Whether flag, switch or sample ``name`` is on for ``request`` (or for no request).

    Raises ``UnknownFlag`` (with the closest names) for a name that neither the
    database nor ``DJANGO_CD["FLAGS"]`` knows; a declared flag not yet in the
    database is off.
    """
    from django_cd.flags import testing
    from django_cd.flags.evaluation import for_request

    forced = testing.forced(name)
    if forced is not None:
        return forced
    snapshot_, context = for_request(request)
    return snapshot_.is_active(name, context)


def snapshot() -> dict[str, Any]:
    """Every flag's state as JSON-able data (what a release records)."""
    from django_cd.flags.transfer import snapshot as take

    return take()


def restore(data: Any, who: str, reason: str) -> list[dict[str, Any]]:
    """Put back the states of a :func:`snapshot`, audited as a rollback; returns the diff."""
    from django_cd.flags.transfer import restore as put_back

    return put_back(data, who, reason)


def __getattr__(name: str) -> Any:
    # The view helpers and the test helper import Django's view machinery;
    # loaded on first use so `import django_cd.flags` stays light.
    if name in ("flag_required", "FlagRequiredMixin"):
        from django_cd.flags import views

        return getattr(views, name)
    if name == "override_flag":
        from django_cd.flags.testing import override_flag

        return override_flag
    raise AttributeError(name)
