"""``manage.py record_deployment``: mirror one history entry (JSON on stdin) into the DB.

Run by the deploy engine inside the release that serves after a deploy or
rollback; not meant to be run by hand.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import now

from django_cd.models import Deployment
from django_cd.pipeline.history import describe_deployer


class Command(BaseCommand):
    help = "Record one deploy/rollback history entry (JSON on stdin) as a Deployment row."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--file", help="Read the entry from this file instead of stdin.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["file"]:
                with open(options["file"]) as source:
                    entry = json.load(source)
            else:
                entry = json.load(sys.stdin)
        except (OSError, ValueError) as error:
            raise CommandError(f"The history entry is not valid JSON: {error}") from None
        try:
            row = Deployment.objects.create(
                environment=str(entry.get("env", "")),
                action=str(entry.get("event", "deploy")),
                status=str(entry.get("status", "")),
                release=str(entry.get("release") or ""),
                commit=str(entry.get("commit") or ""),
                previous=str(entry.get("previous") or ""),
                deployed_by=describe_deployer(entry.get("by")),
                at=parse_datetime(str(entry.get("at", ""))) or now(),
                failed_step=str(entry.get("failed_step") or ""),
                error=str(entry.get("error") or ""),
                backup=str(entry.get("backup") or ""),
                details=entry,
            )
        except DatabaseError as error:
            raise CommandError(f"Cannot record the deployment: {error}") from None
        self.stdout.write(f"Recorded deployment {row.pk}.")
