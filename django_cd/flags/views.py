"""Views behind a flag: a decorator for functions, a mixin for class-based views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from django_cd import flags

View = Callable[..., HttpResponse]


def flag_required(name: str, redirect_to: str | None = None) -> Callable[[View], View]:
    """404 (or a redirect to ``redirect_to``) unless flag ``name`` is on for the request."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not flags.is_active(name, request):
                return _refuse(name, redirect_to)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _refuse(name: str, redirect_to: str | None) -> HttpResponse:
    if redirect_to:
        return redirect(redirect_to)
    raise Http404(f"Flag {name} is off.")


class FlagRequiredMixin:
    """Set ``flag_name`` (and optionally ``flag_redirect_to``) on a class-based view."""

    flag_name: str = ""
    flag_redirect_to: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not self.flag_name:
            raise TypeError(f"{type(self).__name__} needs a flag_name.")
        if not flags.is_active(self.flag_name, request):
            return _refuse(self.flag_name, self.flag_redirect_to)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc, no-any-return]
