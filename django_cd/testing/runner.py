"""``TEST_RUNNER = "django_cd.testing.PipelineRunner"``: ``manage.py test --pipeline=...``."""

from __future__ import annotations

import argparse
import os
import sys
import time
import unittest
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases  # type: ignore[attr-defined]

from django_cd.testing import results
from django_cd.testing.coverage_session import CoverageOutcome, CoverageSession, take_early
from django_cd.testing.decorator import PipelineIndex
from django_cd.testing.outcome import counts_by_pipeline, result_class, whole_run_counts
from django_cd.testing.selection import (
    Selection,
    count_by_pipeline,
    declared_pipelines,
    is_load_failure,
    parse_names,
)


class NothingSelected(Exception):
    """The selection holds no test; raised inside the run, reported as a CommandError."""


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both pipeline runners add to ``manage.py test``."""
    parser.add_argument(
        "--pipeline",
        action="append",
        metavar="NAME[,NAME...]",
        help="Run only the tests of these pipelines (declared in DJANGO_CD['PIPELINES']).",
    )
    parser.add_argument(
        "--exclude-pipeline",
        action="append",
        metavar="NAME[,NAME...]",
        help="Leave out the tests of these pipelines.",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="Exit 0 even when the selection runs no test (or skips them all).",
    )


class PipelineRunner(DiscoverRunner):
    """Django's test runner with pipelines, JUnit XML, coverage and recorded results."""

    def __init__(
        self,
        pipeline: list[str] | None = None,
        exclude_pipeline: list[str] | None = None,
        list_pipelines: bool = False,
        allow_empty: bool = False,
        junit_xml: str | None = None,
        coverage: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Names are checked before anything runs: a misspelt pipeline is an error.
        self.selection = Selection(
            include=parse_names(pipeline, "--pipeline"),
            exclude=parse_names(exclude_pipeline, "--exclude-pipeline"),
        )
        self.list_pipelines = list_pipelines
        self.allow_empty = allow_empty
        self.junit_xml = Path(junit_xml) if junit_xml else None
        self.measure_coverage = coverage
        if self.junit_xml is not None:
            _require("xmlrunner", "--junit-xml", "unittest-xml-reporting")
        self.test_labels: list[str] = []
        self.tests_found = 0
        self.selected: list[unittest.TestCase] = []
        self.index = PipelineIndex()
        self.revision_probe: results.RevisionProbe | None = None
        self.result: unittest.TestResult | None = None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        add_pipeline_arguments(parser)
        parser.add_argument(
            "--list-pipelines",
            action="store_true",
            help="List each declared pipeline and how many tests it holds, then exit.",
        )
        parser.add_argument(
            "--junit-xml",
            metavar="PATH",
            help="Write a JUnit XML report of the run to PATH (for the CI server).",
        )
        parser.add_argument(
            "--coverage",
            action="store_true",
            help="Measure coverage, report it, and fail below the configured fail_under.",
        )

    # Selection ------------------------------------------------------------

    def load_tests_for_label(self, label: str, discover_kwargs: dict[str, Any]) -> Any:
        tests = super().load_tests_for_label(label, discover_kwargs)
        if tests is None:
            return None
        found = list(iter_test_cases(tests))
        self.tests_found += len(found)
        if self.list_pipelines:
            return self.test_suite(found)
        return self.test_suite(self.selection.filter(found, self.index))

    def build_suite(self, test_labels: Any = None, **kwargs: Any) -> Any:
        self.test_labels = list(test_labels or [])
        suite = super().build_suite(test_labels, **kwargs)
        self.selected = list(iter_test_cases(suite))
        if not self.selected and not self.list_pipelines and not self.allow_empty:
            raise NothingSelected(
                f"The selection ran no test: {self._describe_selection()} "
                f"selected 0 of the {self.tests_found} tests found. Check the pipeline "
                "names and the @pipeline decorators, or pass --allow-empty if an empty "
                "run is expected."
            )
        return suite

    def _describe_selection(self) -> str:
        parts = []
        if self.selection.include:
            parts.append(f"--pipeline={','.join(self.selection.include)}")
        if self.selection.exclude:
            parts.append(f"--exclude-pipeline={','.join(self.selection.exclude)}")
        return " ".join(parts) or "the test labels and options"

    # Running --------------------------------------------------------------

    def get_resultclass(self) -> Any:
        return result_class(super().get_resultclass() or unittest.TextTestResult)

    def run_suite(self, suite: Any, **kwargs: Any) -> Any:
        if self.junit_xml is None:
            self.result = super().run_suite(suite, **kwargs)
        else:
            self.result = self._run_suite_with_junit(suite)
        return self.result

    def _run_suite_with_junit(self, suite: Any) -> unittest.TestResult:
        import xmlrunner
        from xmlrunner.result import _XMLTestResult

        assert self.junit_xml is not None
        runner_kwargs = self.get_test_runner_kwargs()
        runner_kwargs["resultclass"] = result_class(_XMLTestResult)
        # CI servers show these on every test suite of the report.
        suite.properties = {"pipelines": ",".join(self._recorded_pipelines()) or "all"}
        self.junit_xml.parent.mkdir(parents=True, exist_ok=True)
        with self.junit_xml.open("wb") as output:
            runner = xmlrunner.XMLTestRunner(output=output, outsuffix="", **runner_kwargs)
            result: unittest.TestResult = runner.run(suite)
        return result

    def run_tests(self, test_labels: list[str], **kwargs: Any) -> int:
        """Run the selected tests; return the number of failures (0 means success)."""
        if self.list_pipelines:
            self._write_pipeline_counts(test_labels)
            return 0
        started_at = datetime.now(UTC)
        clock = time.monotonic()
        session = self._coverage_session() if self.measure_coverage else None
        self.revision_probe = results.RevisionProbe()
        try:
            failures: int = super().run_tests(test_labels, **kwargs)
        except NothingSelected as empty:
            self.revision_probe.discard()
            # Django set the test environment up before building the suite.
            self.teardown_test_environment()
            raise CommandError(str(empty)) from None
        except BaseException:
            self.revision_probe.discard()
            raise
        finally:
            if session is not None and self.result is None:
                session.coverage.stop()
        duration = time.monotonic() - clock
        coverage = session.finish(sys.stdout) if session is not None else None
        assert self.result is not None
        whole = whole_run_counts(self.result)
        self._record(started_at, duration, coverage)
        if coverage is not None and not coverage.passed:
            # Said at any verbosity: it is the only reason this run fails.
            sys.stderr.write(
                f"Coverage {coverage.percent:.2f}% is below fail_under={coverage.fail_under:g}: "
                "the run fails.\n"
            )
            failures += 1
        if whole.executed == 0 and not self.allow_empty:
            raise CommandError(
                f"The selection ran no test: all {whole.skipped} selected tests were skipped. "
                "Provide what they need (e.g. the smoke tests' base URL) or pass --allow-empty."
            )
        return failures

    def _coverage_session(self) -> CoverageSession:
        session = take_early()
        if session is None:  # called in-process (call_command), not from manage.py
            session = CoverageSession()
            session.start()
        if self.parallel > 1:
            session.require_multiprocess()
        return session

    # Results --------------------------------------------------------------

    def _recorded_pipelines(self) -> list[str]:
        return self.selection.recorded_pipelines(self.selected, self.index)

    def _is_complete(self) -> bool:
        """True when nothing narrowed the pipelines below their whole set of tests."""
        return not (self.test_labels or self.test_name_patterns or self.tags or self.exclude_tags)

    def _record(
        self, started_at: datetime, duration: float, coverage: CoverageOutcome | None
    ) -> None:
        assert self.result is not None and self.revision_probe is not None
        try:
            revision = self.revision_probe.revision()
        except results.NotARepository as error:
            self.log(f"Test results not recorded: no git commit to file them under ({error}).")
            return
        pipelines = self._recorded_pipelines()
        by_pipeline, unattributed = counts_by_pipeline(self.result, pipelines, self.index)
        # A stopped run (failfast, Ctrl-C) or a failed coverage threshold fails every
        # pipeline; otherwise each pipeline stands on its own tests' outcomes.
        sound = not self.result.shouldStop and (coverage is None or coverage.passed)
        run_ok = (
            sound and self.result.wasSuccessful() and whole_run_counts(self.result).executed > 0
        )
        for name in pipelines:
            counts = by_pipeline[name]
            result = results.Result(
                sha=revision.sha,
                dirty=revision.dirty,
                complete=self._is_complete(),
                pipeline=name,
                passed=sound and counts.clean and counts.executed > 0 and not unattributed,
                counts=counts,
                started_at=started_at.isoformat(timespec="seconds"),
                duration=round(duration, 3),
                selection=self._selection_record(),
                run_passed=run_ok,
                settings_module=str(getattr(settings, "SETTINGS_MODULE", "") or ""),
                parallel=max(self.parallel, 1),
                junit_xml=str(self.junit_xml.resolve()) if self.junit_xml else None,
                coverage=coverage.as_dict() if coverage else None,
            )
            path = results.write(result, revision.root)
            verdict = "passed" if result.passed else "FAILED"
            if counts.clean and counts.executed == 0:
                verdict = "ran no test, so not passed"
            self.log(
                f"Pipeline {name}: {verdict} "
                f"({counts.run} run, {counts.failures} failures, {counts.errors} errors, "
                f"{counts.skipped} skipped); recorded in {_display(path)}"
            )

    def _selection_record(self) -> dict[str, list[str]]:
        return {
            "pipelines": list(self.selection.include),
            "excluded_pipelines": list(self.selection.exclude),
            "labels": self.test_labels,
            "patterns": sorted(self.test_name_patterns or ()),
            "tags": sorted(self.tags),
            "exclude_tags": sorted(self.exclude_tags),
        }

    # --list-pipelines -----------------------------------------------------

    def _write_pipeline_counts(self, test_labels: list[str]) -> None:
        discover_kwargs: dict[str, Any] = {}
        if self.pattern is not None:
            discover_kwargs["pattern"] = self.pattern
        if self.top_level is not None:
            discover_kwargs["top_level_dir"] = self.top_level
        tests = []
        for label in test_labels or ["."]:
            tests += list(iter_test_cases(self.load_tests_for_label(label, discover_kwargs)))
        counts = count_by_pipeline(tests, self.index)
        default = _default_pipeline()
        width = max(len("pipeline"), *(len(name) for name in declared_pipelines()))
        lines = [f"{'pipeline':<{width}}  tests"]
        for name in declared_pipelines():
            note = "  (default: tests without @pipeline)" if name == default else ""
            lines.append(f"{name:<{width}}  {counts[name]:>5}{note}")
        lines.append(f"{len(tests)} tests found.")
        broken = sum(1 for test in tests if is_load_failure(test))
        if broken:
            lines.append(f"{broken} test modules could not be imported; run them to see why.")
        sys.stdout.write("\n".join(lines) + "\n")


def _default_pipeline() -> str:
    from django_cd import conf

    return str(conf.get_config()["DEFAULT_PIPELINE"])


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    return relative if len(relative) < len(str(path)) else str(path)


def _require(module: str, option: str, package: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise CommandError(
            f"{option} needs the {package} package: pip install 'django-cd-deploy[testing]'."
        ) from None
