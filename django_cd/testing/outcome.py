"""Turn a finished unittest result into per-pipeline :class:`~.results.Counts`."""

from __future__ import annotations

import unittest
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django_cd.testing.decorator import pipelines_of
from django_cd.testing.results import Counts


class StartedTestsMixin:
    """Keeps every test the run started, so runs can be counted per pipeline.

    Mixed into whichever result class the run uses (text, JUnit XML, debug-sql,
    pdb). With ``--parallel`` the workers' events are replayed on the parent's
    result, so this sees every test there too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cd_started: list[unittest.TestCase] = []

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)  # type: ignore[misc]
        self.cd_started.append(test)


def result_class(base: type[unittest.TestResult]) -> type[unittest.TestResult]:
    """``base`` with :class:`StartedTestsMixin` mixed in."""
    return type(f"Pipeline{base.__name__.lstrip('_')}", (StartedTestsMixin, base), {})


def _case(test: Any) -> unittest.TestCase | None:
    """The test case behind a result entry; None for class/module-level errors."""
    case = getattr(test, "test_case", test)  # a failed subTest names its test case
    return case if isinstance(case, unittest.TestCase) else None


def _tally(
    tests: Iterable[Any], index: Callable[[unittest.TestCase], tuple[str, ...]]
) -> tuple[dict[str, int], int]:
    by_pipeline: dict[str, int] = defaultdict(int)
    unattributed = 0
    for test in tests:
        case = _case(test)
        if case is None or isinstance(case, unittest.loader._FailedTest):  # type: ignore[attr-defined]
            unattributed += 1
            continue
        for name in index(case):
            by_pipeline[name] += 1
    return by_pipeline, unattributed


def whole_run_counts(result: unittest.TestResult) -> Counts:
    return Counts(
        run=result.testsRun,
        failures=len(result.failures),
        errors=len(result.errors),
        skipped=len(result.skipped),
        expected_failures=len(result.expectedFailures),
        unexpected_successes=len(result.unexpectedSuccesses),
    )


def counts_by_pipeline(
    result: unittest.TestResult,
    pipelines: Iterable[str],
    index: Callable[[unittest.TestCase], tuple[str, ...]] = pipelines_of,
) -> tuple[dict[str, Counts], int]:
    """Counts for each of ``pipelines``, and how many errors belong to no single test.

    Errors outside any test (``setUpClass``, ``setUpModule``, a test module that
    cannot be imported) cannot be pinned on a pipeline; the caller fails every
    pipeline of the run for them.
    """
    started, _ = _tally(getattr(result, "cd_started", []), index)
    failures, unattributed_failures = _tally((test for test, _ in result.failures), index)
    errors, unattributed_errors = _tally((test for test, _ in result.errors), index)
    skipped, _ = _tally((test for test, _ in result.skipped), index)
    expected, _ = _tally((test for test, _ in result.expectedFailures), index)
    unexpected, _ = _tally(result.unexpectedSuccesses, index)
    counts = {
        name: Counts(
            run=started[name],
            failures=failures[name],
            errors=errors[name],
            skipped=skipped[name],
            expected_failures=expected[name],
            unexpected_successes=unexpected[name],
        )
        for name in pipelines
    }
    return counts, unattributed_failures + unattributed_errors
