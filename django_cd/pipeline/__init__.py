"""The deploy engine: releases on a host, a lock, steps, an app server, history.

Commands call :class:`Deploy`, :class:`Rollback`, :func:`list_releases` and
:func:`server_for`; nothing here prints.
"""

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
