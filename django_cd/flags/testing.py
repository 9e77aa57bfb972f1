"""``override_flag``: force a flag on or off in a test, without touching the database.

::

    from django_cd.flags import override_flag

    @override_flag("new_checkout", active=True)
    def test_checkout(self): ...

    with override_flag("new_checkout", active=False):
        ...

The forcing lives in a context variable, so it ends with the block and does
not leak into other threads' tests; it wins over the database and the cache.
"""

from __future__ import annotations

import contextvars

from django.test.utils import TestContextDecorator

_forced: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar(
    "django_cd_forced_flags", default=None
)


def forced(name: str) -> bool | None:
    values = _forced.get()
    return None if values is None else values.get(name)


class override_flag(TestContextDecorator):
    """Force flag, switch or sample ``name`` to ``active`` for a block, a test or a class."""

    def __init__(self, name: str, active: bool = True) -> None:
        self.name, self.active = name, active
        self._tokens: list[contextvars.Token[dict[str, bool] | None]] = []
        super().__init__()

    def enable(self) -> None:
        values = dict(_forced.get() or {})
        values[self.name] = self.active
        self._tokens.append(_forced.set(values))

    def disable(self) -> None:
        _forced.reset(self._tokens.pop())
