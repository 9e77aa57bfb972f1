"""Turn a finished unittest result into per-pipeline :class:`~.results.Counts`."""

from __future__ import annotations

import unittest
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django_cd.testing.decorator import pipelines_of
from django_cd.testing.results import Counts


class StartedTestsMixin:
    """Keeps every test the run started and every outcome, as the events arrive.

    Mixed into whichever result class the run uses (text, JUnit XML, debug-sql,
    pdb). The outcomes are taken from the ``add*`` events, not from the base
    class's lists: unittest-xml-reporting stores its own info objects there
    (which name no test case), so counting those lost every failure, error and
    skip of a ``--junit-xml`` run. With ``--parallel`` the workers' events are
    replayed on the parent's result, so this sees every test there too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cd_started: list[unittest.TestCase] = []
        self.cd_outcomes: dict[str, list[Any]] = {kind: [] for kind in OUTCOMES}

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)  # type: ignore[misc]
        self.cd_started.append(test)

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)  # type: ignore[misc]
        self.cd_outcomes["failures"].append(test)

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)  # type: ignore[misc]
        self.cd_outcomes["errors"].append(test)

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)  # type: ignore[misc]
        self.cd_outcomes["skipped"].append(test)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)  # type: ignore[misc]
        self.cd_outcomes["expected_failures"].append(test)

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)  # type: ignore[misc]
        self.cd_outcomes["unexpected_successes"].append(test)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)  # type: ignore[misc]
        if err is not None:
            # unittest files a failed subtest under failures or errors by its exception.
            kind = "failures" if issubclass(err[0], test.failureException) else "errors"
            self.cd_outcomes[kind].append(subtest)


#: The outcome kinds :class:`StartedTestsMixin` keeps, named as in :class:`Counts`.
OUTCOMES = ("failures", "errors", "skipped", "expected_failures", "unexpected_successes")


def result_class(base: type[unittest.TestResult]) -> type[unittest.TestResult]:
    """``base`` with :class:`StartedTestsMixin` mixed in."""
    return type(f"Pipeline{base.__name__.lstrip('_')}", (StartedTestsMixin, base), {})


def _outcomes(result: unittest.TestResult, kind: str) -> list[Any]:
    kept: dict[str, list[Any]] | None = getattr(result, "cd_outcomes", None)
    if kept is not None:
        return kept[kind]
    # A result class without the mixin (another runner's): unittest's own lists.
    attribute = {
        "expected_failures": "expectedFailures",
        "unexpected_successes": "unexpectedSuccesses",
    }.get(kind, kind)
    entries = getattr(result, attribute)
    return [entry[0] if isinstance(entry, tuple) else entry for entry in entries]


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
    return Counts(run=result.testsRun, **{kind: len(_outcomes(result, kind)) for kind in OUTCOMES})


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
    failures, unattributed_failures = _tally(_outcomes(result, "failures"), index)
    errors, unattributed_errors = _tally(_outcomes(result, "errors"), index)
    skipped, _ = _tally(_outcomes(result, "skipped"), index)
    expected, _ = _tally(_outcomes(result, "expected_failures"), index)
    unexpected, _ = _tally(_outcomes(result, "unexpected_successes"), index)
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
