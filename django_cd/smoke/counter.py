"""Responses counted by status class, per release, in the cache.

``ResponseCountMiddleware`` adds one to ``2xx``/``3xx``/``4xx``/``5xx`` of the
release that served each response; the deploy's watch reads the new release's
``5xx`` (``manage.py responsecounts`` run in the release) and rolls back above
the environment's threshold. The cache must be shared by every worker of the
environment (Redis, Memcached, a database or file cache; not LocMemCache), or
each worker counts alone. With a file or database cache, two workers finishing
at the same instant may count one response instead of two: the count is a
floor, which is what a threshold needs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from django_cd.middleware import release_id

GROUPS = ("2xx", "3xx", "4xx", "5xx")
# Counts outlive any watch; they go when the cache evicts them or after a week.
KEEP_SECONDS = 7 * 24 * 3600
MIDDLEWARE_PATH = "django_cd.smoke.counter.ResponseCountMiddleware"


def key(release: str, group: str) -> str:
    return f"django_cd:responses:{release}:{group}"


def record(release: str, status: int) -> None:
    group = f"{status // 100}xx"
    if group not in GROUPS:
        return
    name = key(release, group)
    try:
        if not cache.add(name, 1, KEEP_SECONDS):
            cache.incr(name)
    except Exception:  # counting must never turn a response into an error
        return


def counts(release: str) -> dict[str, int]:
    """The responses ``release`` served, by status class (zeros included)."""
    found = cache.get_many([key(release, group) for group in GROUPS])
    return {group: int(found.get(key(release, group), 0)) for group in GROUPS}


def installed() -> bool:
    return MIDDLEWARE_PATH in getattr(settings, "MIDDLEWARE", [])


class ResponseCountMiddleware:
    """Counts every response of this release by status class (put it near the top)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        release = release_id()
        if release:
            record(release, response.status_code)
        return response
