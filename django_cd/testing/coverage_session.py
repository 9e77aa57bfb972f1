"""``--coverage``: measure a test run with coverage's API and hold it to ``fail_under``.

The project's own coverage configuration (``.coveragerc``, ``setup.cfg``,
``tox.ini`` or ``pyproject.toml`` in the working directory) decides what is
measured and the ``fail_under`` threshold, exactly as ``coverage report`` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from django.core.management.base import CommandError


@dataclass(frozen=True)
class CoverageOutcome:
    """The measured total and the threshold it was held to."""

    percent: float
    fail_under: float
    passed: bool

    def as_dict(self) -> dict[str, float | bool]:
        return {"percent": self.percent, "fail_under": self.fail_under, "passed": self.passed}


class CoverageSession:
    """One measurement around one test run: :meth:`start`, then :meth:`finish`."""

    def __init__(self, *, parallel: bool) -> None:
        try:
            from coverage import Coverage
        except ImportError:  # pragma: no cover - coverage comes with django-cd[testing]
            raise CommandError(
                "--coverage needs the coverage package: pip install 'django-cd[testing]'."
            ) from None
        self.parallel = parallel
        # Worker processes of --parallel measure themselves and save their own
        # data files; coverage can only set that up from a configuration file.
        concurrency = ["thread", "multiprocessing"] if parallel else ["thread"]
        self.coverage = Coverage(data_suffix=parallel or None, concurrency=concurrency)
        if parallel and not self.coverage.config.config_file:
            raise CommandError(
                "--coverage with --parallel needs a coverage configuration file "
                "(.coveragerc, setup.cfg, tox.ini or pyproject.toml with [tool.coverage.run]) "
                "in the working directory. Add one, or run with --parallel=1."
            )

    def start(self) -> None:
        # Like `coverage run`: old data (and old worker files) never leak into this run.
        self.coverage.erase()
        self.coverage.start()

    def finish(self, stream: TextIO) -> CoverageOutcome:
        """Stop measuring, write the report to ``stream``, compare with ``fail_under``."""
        from coverage.exceptions import NoDataError
        from coverage.results import should_fail_under

        self.coverage.stop()
        self.coverage.save()
        if self.parallel:
            self.coverage.combine()
        try:
            percent = self.coverage.report(file=stream)
        except NoDataError:
            raise CommandError(
                "--coverage measured no file. Check the [run] source / include settings "
                "of the project's coverage configuration."
            ) from None
        fail_under = float(str(self.coverage.get_option("report:fail_under") or 0))
        precision = int(str(self.coverage.get_option("report:precision") or 0))
        failed = should_fail_under(percent, fail_under, precision)
        return CoverageOutcome(round(percent, 2), fail_under, not failed)
