"""Which tests a run selects: ``--pipeline`` and ``--exclude-pipeline``."""

from __future__ import annotations

import unittest
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.management.base import CommandError

from django_cd import conf
from django_cd.testing.decorator import PipelineIndex


def declared_pipelines() -> list[str]:
    """``DJANGO_CD["PIPELINES"]``, in their declared order."""
    return list(conf.get_config()["PIPELINES"])


def parse_names(values: Sequence[str] | None, option: str) -> tuple[str, ...]:
    """``["unit,functional", "slow"]`` -> ``("unit", "functional", "slow")``, all declared.

    An unknown name is a ``CommandError`` that names it and lists the declared
    pipelines: a misspelt pipeline must never quietly select nothing.
    """
    names: list[str] = []
    for value in values or ():
        names += [name.strip() for name in value.split(",") if name.strip()]
    declared = declared_pipelines()
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise CommandError(
            f"Unknown pipeline{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} in {option}. "
            f"Declared pipelines: {', '.join(declared)}. "
            "Use one of them, or declare it in DJANGO_CD['PIPELINES']."
        )
    if values and not names:
        raise CommandError(f"{option} needs at least one pipeline name, e.g. {option}=unit.")
    return tuple(dict.fromkeys(names))


def is_load_failure(test: unittest.TestCase) -> bool:
    """A test module that failed to import: always selected, so the run fails loudly."""
    return isinstance(test, unittest.loader._FailedTest)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Selection:
    """The pipelines a run includes (empty: every pipeline) and excludes."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def selects(self, test: unittest.TestCase) -> bool:
        return bool(self.filter([test]))

    def filter(
        self, tests: Iterable[unittest.TestCase], index: PipelineIndex | None = None
    ) -> list[unittest.TestCase]:
        """The tests of ``tests`` this selection runs, in their order."""
        index = index or PipelineIndex()
        include, exclude = frozenset(self.include), frozenset(self.exclude)
        selected = []
        for test in tests:
            if not is_load_failure(test):
                names = index(test)
                if include and include.isdisjoint(names):
                    continue
                if exclude and not exclude.isdisjoint(names):
                    continue
            selected.append(test)
        return selected

    def recorded_pipelines(
        self, tests: Iterable[unittest.TestCase], index: PipelineIndex | None = None
    ) -> list[str]:
        """The pipelines this run gives evidence about, in declared order.

        The ones named by ``--pipeline``; without it, each declared pipeline
        (not excluded) that holds at least one selected test.
        """
        if self.include:
            return [name for name in declared_pipelines() if name in self.include]
        held = count_by_pipeline(tests, index)
        return [name for name in declared_pipelines() if held[name] and name not in self.exclude]


def count_by_pipeline(
    tests: Iterable[unittest.TestCase], index: PipelineIndex | None = None
) -> Counter[str]:
    """How many tests each pipeline holds (a test in two pipelines counts in both)."""
    index = index or PipelineIndex()
    counts: Counter[str] = Counter()
    for test in tests:
        if not is_load_failure(test):
            counts.update(index(test))
    return counts
