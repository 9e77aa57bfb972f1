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

    def __init__(self) -> None:
        try:
            from coverage import Coverage
        except ImportError:  # pragma: no cover - coverage comes with django-cd-deploy[testing]
            raise CommandError(
                "--coverage needs the coverage package: pip install 'django-cd-deploy[testing]'."
            ) from None
        # Worker processes of --parallel measure themselves and save their own
        # data files, combined at the end; coverage can only set that up from a
        # configuration file, so without one only serial runs are measured.
        self.multiprocess = bool(Coverage().config.config_file)
        if self.multiprocess:
            self.coverage = Coverage(data_suffix=True, concurrency=["thread", "multiprocessing"])
        else:
            self.coverage = Coverage(concurrency=["thread"])

    def require_multiprocess(self) -> None:
        """Refuse ``--parallel`` when the workers could not be measured."""
        if not self.multiprocess:
            self.coverage.stop()
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
        reporter = self.coverage
        if self.multiprocess:
            # As `coverage combine` does: this process's and every worker's data
            # file merged into the one data file `coverage html` reads.
            from coverage import Coverage

            reporter = Coverage()
            reporter.combine()
            reporter.save()
        try:
            percent = reporter.report(file=stream)
        except NoDataError:
            raise CommandError(
                "--coverage measured no file. Check the [run] source / include settings "
                "of the project's coverage configuration."
            ) from None
        fail_under = float(str(reporter.get_option("report:fail_under") or 0))
        precision = int(str(reporter.get_option("report:precision") or 0))
        failed = should_fail_under(percent, fail_under, precision)
        return CoverageOutcome(round(percent, 2), fail_under, not failed)


#: The session ``manage.py test --coverage`` started while Django loaded the apps.
_early: CoverageSession | None = None


def start_early() -> None:
    """Start measuring before Django imports the apps' models, admin and URLs.

    The test runner only exists after ``django.setup()``; lines that ran while
    the apps were imported (class and function definitions) would otherwise
    count as missed. ``DjangoCDConfig`` calls this when the command line is
    ``test ... --coverage``; the runner takes the session over with
    :func:`take_early`. Any problem is left for the runner to report.
    """
    global _early
    try:
        session = CoverageSession()
        session.start()
    except Exception:
        return
    _early = session


def take_early() -> CoverageSession | None:
    """The early session, once; None when there is none."""
    global _early
    session, _early = _early, None
    return session
