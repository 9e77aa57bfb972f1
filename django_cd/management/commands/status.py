"""``manage.py status --env=NAME``: the state of an environment, after any crash.

Exit status: 0 nothing to act on; 1 something needs the operator (an interrupted
deploy, a stale lock, a database that does not match the current release).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd.management.commands._output import engine_errors, environment, write_json
from django_cd.pipeline.fleet import close, fleet_targets
from django_cd.pipeline.processes import describe_process
from django_cd.pipeline.status import fleet_status, problems


class Command(BaseCommand):
    help = "Show an environment's current release, lock, interrupted deploy and database state."
    # Like rollback: a broken checkout must not hide the state of what is deployed.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. live.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--no-database",
            action="store_true",
            help="Do not ask the database (faster; 'database' is null).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        with engine_errors():
            targets = fleet_targets(env)
            try:
                report = fleet_status(targets, database=not options["no_database"])
            finally:
                close(targets)
        found = problems(report)
        if options["json"]:
            write_json(self.stdout, {**report, "problems": found})
        else:
            self._print(report)
        if found:
            raise CommandError("\n".join(found))

    def _print(self, report: dict[str, Any]) -> None:
        write = self.stdout.write
        write(f"{report['env']} ({report['root']})")
        fleet = report.get("hosts", [])
        if fleet:  # what follows, up to the host lines, is read on the migration host
            write(f"  migration:   {fleet[0]['host']} (the lock, history and database below)")
        current = report["current"]
        commit = (report["current_commit"] or "")[:12]
        write(
            f"  current:     {current or 'nothing deployed'}" + (f" ({commit})" if commit else "")
        )
        lock = report["lock"]
        if lock is None:
            write("  lock:        free")
        else:
            stale = f" (STALE: {lock['why_stale']})" if lock["stale"] else ""
            write(f"  lock:        held by {lock['holder'] or 'an unreadable lock file'}{stale}")
        if report["running"]:
            running = report["running"]
            write(
                f"  running:     {running['action']} of {running['release']}, "
                f"step {running['step']} (pid {running['pid']})"
            )
        dead = report["interrupted"]
        write(f"  interrupted: {dead['description'] if dead else 'none'}")
        database = report["database"]
        if database is None:
            write("  database:    not asked (--no-database)")
        elif database["matches_current"] is None:
            write(f"  database:    unknown: {database['error']}")
        elif database["matches_current"]:
            write(f"  database:    matches {database['release'] or 'the empty deployment'}")
        else:
            write("  database:    DOES NOT MATCH the current release")
            for name in database["missing"]:
                write(f"    missing: {name}")
            for name in database["unknown"]:
                write(f"    unknown: {name}")
        if not fleet:  # a fleet's host lines show each server
            write(f"  server:      {report['server']['detail']}")
        for row in report["processes"]:
            write(f"  process:     {describe_process(row)}")
        for row in fleet:
            if not row["reachable"]:
                write(f"  host:        {row['host']}: UNREACHABLE: {row['error']}")
                continue
            write(
                f"  host:        {row['host']}: {row['current'] or 'nothing deployed'}, "
                f"{row['server']['detail']}"
            )
        if report.get("fleet"):
            one = report["fleet"]["consistent"]
            write(f"  fleet:       {'on one release' if one else 'NOT ON ONE RELEASE'}")
