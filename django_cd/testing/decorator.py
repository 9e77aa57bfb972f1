"""``@pipeline(...)``: which CI stage a test belongs to.

A test's pipelines come from the nearest declaration: the test method's own
``@pipeline``, else its class's (inherited through the class's bases), else
``DJANGO_CD["DEFAULT_PIPELINE"]``. The nearest one wins outright, so a
``@pipeline("slow")`` method in a ``@pipeline("functional")`` class runs only
with ``--pipeline=slow``; to put a test in both, name both.

Suites coming from nose keep their marks: a test without ``@pipeline`` whose
nose attribute named like a declared pipeline is set (``@attr("slow")`` sets
``slow = True``) belongs to that pipeline.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django_cd import conf

T = TypeVar("T", bound=Callable[..., Any])

#: The attribute ``@pipeline`` sets on a test method or class.
ATTRIBUTE = "cd_pipelines"


@dataclass(frozen=True)
class Declaration:
    """One ``@pipeline(...)`` as written: on what (dotted name) and which names."""

    target: str
    names: tuple[str, ...]


#: Every ``@pipeline(...)`` applied so far; the system checks read it.
declarations: list[Declaration] = []


def pipeline(*names: str) -> Callable[[T], T]:
    """Put a test method or a test class (and its subclasses) in the named pipelines.

    ``@pipeline("functional")`` or ``@pipeline("functional", "slow")``. The names
    must be declared in ``DJANGO_CD["PIPELINES"]``; ``manage.py check`` reports
    an undeclared one as ``django_cd.E020``.
    """
    if not names or not all(isinstance(name, str) and name for name in names):
        raise TypeError("@pipeline() takes one or more pipeline names, e.g. @pipeline('unit').")

    def decorate(target: T) -> T:
        # Stored on the object itself: a class attribute is inherited by
        # subclasses, a function attribute stays with that one method.
        setattr(target, ATTRIBUTE, tuple(dict.fromkeys(names)))
        declarations.append(Declaration(_dotted_name(target), tuple(names)))
        return target

    return decorate


def _dotted_name(target: Any) -> str:
    return f"{target.__module__}.{target.__qualname__}"


def pipelines_of(test: unittest.TestCase) -> tuple[str, ...]:
    """The pipelines ``test`` belongs to, by the nearest-declaration rule above."""
    return PipelineIndex().lookup(test)


class PipelineIndex:
    """:func:`pipelines_of` for one run, remembering each test's answer.

    Selecting and then counting ask about the same thousands of tests; the
    settings are read once, not per test.
    """

    def __init__(self) -> None:
        config = conf.get_config()
        self.declared: tuple[str, ...] = tuple(config["PIPELINES"])
        self.default: tuple[str, ...] = (config["DEFAULT_PIPELINE"],)
        self.known: dict[int, tuple[str, ...]] = {}

    def __call__(self, test: unittest.TestCase) -> tuple[str, ...]:
        # Keyed by id(): the run's suite keeps every test alive, so ids are not reused.
        found = self.known.get(id(test))
        if found is None:
            found = self.known[id(test)] = self.lookup(test)
        return found

    def lookup(self, test: unittest.TestCase) -> tuple[str, ...]:
        cls = type(test)
        method = getattr(cls, getattr(test, "_testMethodName", ""), None)
        names = getattr(method, ATTRIBUTE, None) or getattr(cls, ATTRIBUTE, None)
        if names:
            return tuple(names)
        marked = tuple(
            name
            for name in self.declared
            if getattr(method, name, getattr(cls, name, None)) is True
        )
        return marked or self.default
