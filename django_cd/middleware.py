"""``X-Release`` on every response: which release served it.

The deploy's smoke check reads it to know the new release answers. The id
comes from ``release.json`` at the release root, found from ``BASE_DIR``
(or a parent of it), read once per process: a reload starts new processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "X-Release"
# How far above BASE_DIR the release root may be (BASE_DIR is often the project dir).
SEARCH_DEPTH = 3


@cache
def release_id() -> str | None:
    """This process's release id, or None when not running from a release."""
    base = getattr(settings, "BASE_DIR", None)
    if base is None:
        return None
    directory = Path(base).resolve()
    for candidate in [directory, *directory.parents][: SEARCH_DEPTH + 1]:
        manifest = candidate / "release.json"
        if manifest.is_file():
            try:
                value = json.loads(manifest.read_text()).get("id")
            except (OSError, ValueError):
                return None
            return str(value) if value else None
    return None


class ReleaseHeaderMiddleware:
    """Adds ``X-Release: <id>``; put it first in ``MIDDLEWARE`` so every answer has it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        release = release_id()
        if release:
            response[HEADER] = release
        return response
