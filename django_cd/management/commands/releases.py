"""``manage.py releases --env=NAME``: the releases on the host, which is current."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from django_cd.management.commands._output import (
    engine_errors,
    environment,
    warn_if_database_differs,
    write_json,
)
from django_cd.pipeline import list_releases
from django_cd.pipeline.fleet import close, fleet_targets


class Command(BaseCommand):
    help = "List an environment's releases: current, commit, who, when, status, backup."
    # The checkout's own checks (version files, test pipelines) must not stand in the
    # way of listing releases when something is broken; get_environment() still refuses a bad
    # DJANGO_CD.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--env", required=True, help="The environment, e.g. staging.")
        parser.add_argument("--json", action="store_true", help="Print a JSON list.")

    def handle(self, *args: Any, **options: Any) -> None:
        env = environment(options["env"])
        with engine_errors():
            targets = fleet_targets(env)
            try:
                target = targets[0]  # a fleet's history and migration host
                rows = list_releases(target)
                warn_if_database_differs(self, target)
                hosts = {t.host.name: t.layout.current_release(t.host) for t in targets[1:]}
            finally:
                close(targets)
        if hosts:  # a fleet: which release each host serves
            hosts = {
                target.host.name: next((r["id"] for r in rows if r["current"]), None),
                **hosts,
            }
        if options["json"]:
            write_json(self.stdout, {"releases": rows, "hosts": hosts} if hosts else rows)
            return
        for name, serving in hosts.items():
            self.stdout.write(f"{name}: current {serving or 'none'}")
        if not rows:
            self.stdout.write(f"No releases of {env.name} under {env.root}.")
            return
        for row in rows:
            mark = "*" if row["current"] else " "
            backup = "backup" if row["backup"] else ""
            line = (
                f"{mark} {row['id']:<28} {str(row['commit'])[:12]:<12} {row['status']:<12} "
                f"{row['deployed_at'] or '':<25} {row['deployed_by']:<20} {backup}"
            )
            self.stdout.write(self.style.SUCCESS(line) if row["current"] else line)
