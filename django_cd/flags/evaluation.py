"""Evaluating flags from one versioned snapshot per request.

The cache holds a version key and, under that version, every flag's state.
A request reads the version once (one cache call), reuses this process's
compiled snapshot when the version matches, and keeps it on the request, so a
page that checks fifty flags costs one cache round trip and no query. Any
change to a flag, switch, sample or rule writes a new version (see
:mod:`django_cd.flags.signals`); the next request of every process then
reloads, from the cache or, once, from the database.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from django_cd import conf
from django_cd.flags import conditions as cond
from django_cd.flags import state as flag_state
from django_cd.flags.errors import UnknownFlag

VERSION_KEY = "django_cd:flags:version"
DATA_KEY = "django_cd:flags:data:{}"
# Old versions' data is dead weight in the cache; a missing one is rebuilt from the DB.
DATA_TIMEOUT = 24 * 3600
REQUEST_ATTRIBUTE = "_django_cd_flags"


@dataclass(frozen=True)
class CompiledFlag:
    name: str
    type: str
    status: str
    includes: tuple[cond.Predicate, ...]
    excludes: tuple[cond.Predicate, ...]
    on_after: datetime | None
    off_after: datetime | None
    share: float


class Snapshot:
    """Every flag of one version, compiled: evaluating one is a dict look-up and predicates."""

    def __init__(self, version: str, states: Sequence[Mapping[str, Any]]) -> None:
        self.version = version
        self.flags: dict[str, CompiledFlag] = {}
        # Flags first: a switch or sample of the same name does not hide a flag.
        for data in sorted(states, key=lambda s: flag_state.TYPES.index(s["type"]), reverse=True):
            self.flags[data["name"]] = _compile(data)

    def is_active(self, name: str, ctx: cond.Context) -> bool:
        flag = self.flags.get(name)
        if flag is None:
            declared = declared_names()
            if name in declared:
                return False  # declared but not reconciled yet: off, as reconcile makes it
            raise UnknownFlag(name, [*self.flags, *declared])
        if flag.type == "sample":
            # waffle's samples: a fresh draw on every check, by design.
            return random.uniform(0, 100) < flag.share
        if flag.status == "disabled" or not _in_schedule(flag):
            return False
        if flag.status == "global":
            return True
        if flag.status == "inherit":
            return self.is_active(name.rsplit(":", 1)[0], ctx)
        if any(excluded(ctx) for excluded in flag.excludes):
            return False
        return any(included(ctx) for included in flag.includes)


def _compile(data: Mapping[str, Any]) -> CompiledFlag:
    name, conditions = data["name"], data["conditions"]
    share = float(conditions[0]["value"]) if data["type"] == "sample" else 0.0
    return CompiledFlag(
        name=name,
        type=data["type"],
        status=data["status"],
        includes=tuple(cond.compile_condition(name, c) for c in conditions if not c["exclude"]),
        excludes=tuple(cond.compile_condition(name, c) for c in conditions if c["exclude"]),
        on_after=flag_state.parse_time(data["on_after"]),
        off_after=flag_state.parse_time(data["off_after"]),
        share=share,
    )


def _in_schedule(flag: CompiledFlag) -> bool:
    if flag.on_after is None and flag.off_after is None:
        return True
    now = timezone.now()
    if flag.on_after is not None and now < flag.on_after:
        return False
    return flag.off_after is None or now < flag.off_after


# The snapshot of this process, and the cache ---------------------------------

_process_lock = threading.Lock()
_process: Snapshot | None = None


def current() -> Snapshot:
    """The snapshot of the cache's current version: one cache call when nothing changed."""
    global _process
    version = default_cache.get(VERSION_KEY)
    known = _process
    if version is not None and known is not None and known.version == version:
        return known
    if version is None:
        version = uuid.uuid4().hex
        # add, not set: of two processes racing here, both end up on the winner's version.
        if not default_cache.add(VERSION_KEY, version, None):
            version = default_cache.get(VERSION_KEY) or version
    states = default_cache.get(DATA_KEY.format(version))
    if states is None:
        states = flag_state.read_all()
        default_cache.set(DATA_KEY.format(version), states, DATA_TIMEOUT)
    snapshot = Snapshot(version, states)
    with _process_lock:
        _process = snapshot
    return snapshot


def changed() -> None:
    """Make every process reload the flags on its next check."""
    default_cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def for_request(request: HttpRequest | None) -> tuple[Snapshot, cond.Context]:
    """The request's snapshot and context, made on its first check and kept on it."""
    if request is None:
        return current(), cond.Context(environment=environment())
    memo: tuple[Snapshot, cond.Context] | None = getattr(request, REQUEST_ATTRIBUTE, None)
    if memo is None:
        memo = (current(), context(request))
        setattr(request, REQUEST_ATTRIBUTE, memo)
    return memo


def context(request: HttpRequest) -> cond.Context:
    host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME") or ""
    # Without the port; get_host() is not used since it raises on a disallowed host.
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return cond.Context(
        environment=environment(),
        ip=request.META.get("REMOTE_ADDR"),
        host=host.strip("[]"),
        user=getattr(request, "user", None),
    )


@cache
def environment() -> str | None:
    """The environment this process serves: the one whose ``settings`` is ours."""
    module = getattr(settings, "SETTINGS_MODULE", None)
    environments = conf.get_config().get("ENVIRONMENTS")
    if not isinstance(environments, Mapping):
        return None
    for name, definition in environments.items():
        if isinstance(definition, Mapping) and definition.get("settings") == module:
            return str(name)
    return None


@cache
def declared_names() -> frozenset[str]:
    declared = conf.get_config().get("FLAGS")
    return frozenset(declared) if isinstance(declared, Mapping) else frozenset()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("DJANGO_CD", "INTERNAL_IPS", "SETTINGS_MODULE"):
        environment.cache_clear()
        declared_names.cache_clear()
        global _process
        _process = None
