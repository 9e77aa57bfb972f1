"""``TEST_RUNNER = "django_cd.testing.NosePipelineRunner"``: pipelines for django-nose users.

``pip install django-cd-deploy[nose]`` brings django-nose and pynose (plain nose
1.3.7 cannot run on Python 3.10+). ``--pipeline`` / ``--exclude-pipeline``
become a nose ``--eval-attr`` expression over the same attributes
``@pipeline`` sets, so nose selects exactly the tests the plain runner would.
"""

from __future__ import annotations

import keyword
import time
import unittest
from datetime import UTC, datetime
from typing import Any

import django
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from django_cd import conf
from django_cd.testing import results
from django_cd.testing.decorator import ATTRIBUTE
from django_cd.testing.outcome import counts_by_pipeline
from django_cd.testing.runner import add_pipeline_arguments
from django_cd.testing.selection import Selection, declared_pipelines, parse_names

try:
    import nose
    from django_nose import NoseTestSuiteRunner
    from django_nose.plugin import AlwaysOnPlugin, DjangoSetUpPlugin, ResultPlugin, TestReorderer
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImproperlyConfigured(
        f"NosePipelineRunner needs django-nose and pynose ({error}). "
        "Install them with: pip install 'django-cd-deploy[nose]'."
    ) from None

if tuple(int(part) for part in nose.__version__.split(".")[:2]) < (1, 4):
    raise ImproperlyConfigured(  # pragma: no cover - depends on the installed extras
        f"nose {nose.__version__} cannot run on this Python; pynose provides a working nose. "
        "Run: pip install --force-reinstall --no-deps pynose"
    )


def pipelines_expression(selection: Selection) -> str:
    """A nose ``--eval-attr`` expression selecting what ``selection`` selects.

    nose evaluates it with every name looked up as an attribute of the test
    method, then of its class (False when absent), so only attribute names,
    literals and operators may appear: no builtins.
    """
    config = conf.get_config()
    marks = " + ".join(
        f"(({name!r},) if {name} is True else ())"
        for name in config["PIPELINES"]
        if name.isidentifier() and not keyword.iskeyword(name)
    )
    names = f"({ATTRIBUTE} or ({marks or '()'}) or ({config['DEFAULT_PIPELINE']!r},))"
    clauses = []
    if selection.include:
        clauses.append("(" + " or ".join(f"{p!r} in {names}" for p in selection.include) + ")")
    if selection.exclude:
        clauses += [f"{p!r} not in {names}" for p in selection.exclude]
    return " and ".join(clauses)


class StartedTests(AlwaysOnPlugin):
    """Keeps the tests nose starts, unwrapped, to count them per pipeline."""

    name = "django-cd-started-tests"

    def __init__(self) -> None:
        super().__init__()
        self.started: list[Any] = []

    def startTest(self, test: Any) -> None:
        self.started.append(getattr(test, "test", test))


class NosePipelineRunner(NoseTestSuiteRunner):
    """django-nose's runner with ``--pipeline``, ``--exclude-pipeline`` and recorded results."""

    # Options nose must not see: Django parses them and this runner applies them.
    django_opts = [
        *NoseTestSuiteRunner.django_opts,
        "--pipeline",
        "--exclude-pipeline",
        "--allow-empty",
    ]

    def __init__(
        self,
        pipeline: list[str] | None = None,
        exclude_pipeline: list[str] | None = None,
        allow_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.selection = Selection(
            include=parse_names(pipeline, "--pipeline"),
            exclude=parse_names(exclude_pipeline, "--exclude-pipeline"),
        )
        self.allow_empty = allow_empty
        self.started = StartedTests()

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)
        add_pipeline_arguments(parser)

    def run_suite(self, nose_argv: list[str]) -> Any:
        expression = pipelines_expression(self.selection)
        if expression:
            nose_argv = [*nose_argv, "--eval-attr", expression]
        result_plugin = ResultPlugin()
        plugins = [DjangoSetUpPlugin(self), result_plugin, TestReorderer(), self.started]
        django.setup()  # as django-nose does: nose may have reloaded modules
        nose.core.TestProgram(argv=nose_argv, exit=False, addplugins=plugins)
        return result_plugin.result

    def run_tests(self, test_labels: Any, extra_tests: Any = None) -> int:
        started_at = datetime.now(UTC)
        clock = time.monotonic()
        self.labels = list(test_labels)
        self.nose_result: unittest.TestResult | None = None
        failures: int = super().run_tests(test_labels, extra_tests)
        assert self.nose_result is not None
        self._record(self.nose_result, started_at, time.monotonic() - clock)
        executed = max(self.nose_result.testsRun - len(self.nose_result.skipped), 0)
        if executed == 0 and not self.allow_empty:
            raise CommandError(
                f"The selection ran no test ({self.nose_result.testsRun} run, "
                f"{len(self.nose_result.skipped)} skipped). Check the pipeline names and "
                "the @pipeline decorators, or pass --allow-empty if an empty run is expected."
            )
        return failures

    def suite_result(self, suite: Any, result: unittest.TestResult, **kwargs: Any) -> int:
        self.nose_result = result
        return int(len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses))

    def _record(self, result: unittest.TestResult, started_at: datetime, duration: float) -> None:
        try:
            revision = results.current_revision()
        except results.NotARepository as error:
            self.log(f"Test results not recorded: no git commit to file them under ({error}).")
            return
        unwrapped = _Unwrapped(result, self.started.started)
        selected = [t for t in unwrapped.cd_started if isinstance(t, unittest.TestCase)]
        pipelines = (
            [p for p in declared_pipelines() if p in self.selection.include]
            if self.selection.include
            else self.selection.recorded_pipelines(selected)
        )
        by_pipeline, unattributed = counts_by_pipeline(unwrapped, pipelines)  # type: ignore[arg-type]
        sound = not result.shouldStop
        run_ok = sound and result.wasSuccessful() and bool(selected)
        for name in pipelines:
            counts = by_pipeline[name]
            record = results.Result(
                sha=revision.sha,
                dirty=revision.dirty,
                complete=not self.labels,
                pipeline=name,
                passed=sound and counts.clean and counts.executed > 0 and not unattributed,
                counts=counts,
                started_at=started_at.isoformat(timespec="seconds"),
                duration=round(duration, 3),
                selection={
                    "pipelines": list(self.selection.include),
                    "excluded_pipelines": list(self.selection.exclude),
                    "labels": self.labels,
                },
                run_passed=run_ok,
                settings_module=_settings_module(),
            )
            path = results.write(record, revision.root)
            verdict = "passed" if record.passed else "FAILED"
            self.log(f"Pipeline {name}: {verdict} ({counts.run} run); recorded in {path}")


class _Unwrapped:
    """A nose result seen as plain unittest entries (nose wraps each test case)."""

    def __init__(self, result: unittest.TestResult, started: list[Any]) -> None:
        self.cd_started = started
        self.testsRun = result.testsRun
        self.failures = [(getattr(t, "test", t), e) for t, e in result.failures]
        self.errors = [(getattr(t, "test", t), e) for t, e in result.errors]
        self.skipped = [(getattr(t, "test", t), e) for t, e in result.skipped]
        self.expectedFailures = [(getattr(t, "test", t), e) for t, e in result.expectedFailures]
        self.unexpectedSuccesses = [getattr(t, "test", t) for t in result.unexpectedSuccesses]


def _settings_module() -> str:
    from django.conf import settings

    return str(getattr(settings, "SETTINGS_MODULE", "") or "")
