"""Small helpers shared by the flags tests: a request, a counting cache, a flag's state."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.http import HttpRequest
from django.test import RequestFactory

from django_cd.flags import changes
from django_cd.flags import state as flag_state


def request(user: Any = None, ip: str = "127.0.0.1", host: str = "testserver") -> HttpRequest:
    made = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_HOST=host)
    made.user = user if user is not None else AnonymousUser()
    return made


def put(
    name: str, status: str = "disabled", conditions: list[Any] | None = None, **kw: Any
) -> None:
    """Store a flag state through the audited path."""
    type_ = kw.pop("type_", "flag")
    state = flag_state.make(name, type_, status, conditions or [], **kw)
    changes.apply(state, by="tests", reason="setup")


class CountingCache:
    """Wraps the default cache and counts the calls made through it."""

    def __init__(self) -> None:
        self.inner = caches["default"]
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return counted
