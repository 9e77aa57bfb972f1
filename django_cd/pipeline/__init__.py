"""The deploy engine: releases on a host, a lock, steps, an app server, history.

Commands call :class:`Deploy`, :class:`Rollback`, :func:`list_releases` and
:func:`server_for`; nothing here prints.

The names below are imported when first used: a Django process that imports one
module of the engine (a system check, the flags, a gunicorn worker loading the
app) does not load all of it, which costs every such process about 0.1 s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_cd.pipeline.deploy import Deploy
    from django_cd.pipeline.errors import LockHeld, PipelineError, StepFailed
    from django_cd.pipeline.host import Host, LocalHost
    from django_cd.pipeline.layout import Layout
    from django_cd.pipeline.lock import Lock
    from django_cd.pipeline.releases import list_releases
    from django_cd.pipeline.rollback import Rollback
    from django_cd.pipeline.server import server_for
    from django_cd.pipeline.steps import Outcome, StepResult
    from django_cd.pipeline.target import Target

#: Each public name, and the module of the engine that defines it.
_HOMES = {
    "Deploy": "deploy",
    "Host": "host",
    "Layout": "layout",
    "LocalHost": "host",
    "Lock": "lock",
    "LockHeld": "errors",
    "Outcome": "steps",
    "PipelineError": "errors",
    "Rollback": "rollback",
    "StepFailed": "errors",
    "StepResult": "steps",
    "Target": "target",
    "list_releases": "releases",
    "server_for": "server",
}
__all__ = [
    "Deploy",
    "Host",
    "Layout",
    "LocalHost",
    "Lock",
    "LockHeld",
    "Outcome",
    "PipelineError",
    "Rollback",
    "StepFailed",
    "StepResult",
    "Target",
    "list_releases",
    "server_for",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
