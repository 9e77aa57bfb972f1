"""``manage.py smoketest --env=NAME``: check the running site, now.

Exit status: 0 every check passed; 1 a check failed; 2 the test could not run
(unknown environment, no URL, bad arguments). With ``--nagios``: one plugin line
on stdout and 0 OK, 1 WARNING (a check slower than its ``warn_seconds``),
2 CRITICAL (a check failed), 3 UNKNOWN (could not run).
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from django_cd import conf
from django_cd.management.commands._output import environment, write_json
from django_cd.pipeline import PipelineError
from django_cd.pipeline.fleet import primary_target
from django_cd.smoke import SmokeReport, SmokeRun, junit
from django_cd.smoke.run import NAGIOS

CANNOT_RUN = 2


class Command(BaseCommand):
    help = "Run the environment's smoke checks against its URL (or --url) and report each."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. staging.")
        parser.add_argument("--url", help="Check this URL instead of the environment's first.")
        parser.add_argument(
            "--release",
            help="The release id that must answer (default: the host's current release).",
        )
        parser.add_argument(
            "--grace",
            type=float,
            help="Seconds to retry failing checks (default: the environment's "
            "smoke grace_seconds; 0 with --nagios).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--junit-xml", type=Path, help="Also write the results as JUnit XML.")
        parser.add_argument(
            "--nagios", action="store_true", help="Print one Nagios plugin line; exit 0-3."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = self._run(options)
        except CommandError as error:
            if options["nagios"]:
                self.stdout.write(f"SMOKE {NAGIOS[3]} - {error}")
                raise CommandError(str(error), returncode=3) from None
            raise CommandError(str(error), returncode=CANNOT_RUN) from None
        if options["junit_xml"] is not None:
            junit.write(report, options["junit_xml"])
        if options["nagios"]:
            code, line = report.nagios()
            self.stdout.write(line)
            if code:
                raise CommandError(line, returncode=code)
            return
        if options["json"]:
            write_json(self.stdout, report.as_dict())
        elif options["verbosity"] >= 1:
            self._print(report)
        if not report.ok:
            raise CommandError(report.summary(), returncode=1)

    def _run(self, options: dict[str, Any]) -> SmokeReport:
        env = environment(options["env"])
        url = options["url"] or env.url
        if not url:
            raise CommandError(
                f"Environment {env.name!r} has no URL to check. Add one to its 'urls', "
                "or pass --url https://..."
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(
                f"--url {url!r} is not an http(s) URL: give e.g. https://www.example.com/"
            )
        grace = options["grace"]
        if grace is not None and grace < 0:
            raise CommandError(f"--grace must be 0 or more seconds, not {grace:g}.")
        if grace is None and options["nagios"]:
            grace = 0.0
        return SmokeRun(
            env, url, self._release(env, options["release"]), grace_seconds=grace
        ).run()

    @staticmethod
    def _release(env: conf.Environment, given: str | None) -> str | None:
        if given:
            return given
        try:
            target = primary_target(env)  # a fleet's hosts serve one release
        except (PipelineError, OSError):
            return None
        try:
            return target.layout.current_release(target.host)
        except (PipelineError, OSError):
            return None  # not reachable from here: any release may answer
        finally:
            target.host.close()

    def _print(self, report: SmokeReport) -> None:
        expected = f", release {report.release}" if report.release else ""
        self.stdout.write(f"Smoke test of {report.url}{expected}")
        header, *rows = report.table()
        self.stdout.write(header)
        for row, result in zip(rows, report.results, strict=True):
            self.stdout.write(row if result.ok else self.style.ERROR(row))
        closing = report.summary() + f" in {report.seconds:.1f} s."
        self.stdout.write(self.style.SUCCESS(closing) if report.ok else self.style.ERROR(closing))
