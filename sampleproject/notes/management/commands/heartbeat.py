"""``manage.py heartbeat --file PATH``: a small role process for the sample project.

Deployed as one of an environment's ``processes`` (docs/deploy.md), it stands
for a project's worker or ``sendalerts`` daemon: until it is stopped, it
rewrites ``PATH`` every ``--interval`` seconds with its pid, the release it
runs from and how many notes there are (so it uses the database too).
``--ignore-term`` makes it ignore SIGTERM, as a worker stuck in a job would.
"""

from __future__ import annotations

import json
import os
import signal
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from notes.models import Note


class Command(BaseCommand):
    help = "Write a heartbeat file (pid, release, notes) until stopped: a sample role process."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--file", required=True, help="The heartbeat file to rewrite.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between beats.")
        parser.add_argument("--ignore-term", action="store_true", help="Ignore SIGTERM.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["ignore_term"]:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        target = Path(options["file"])
        release_dir = os.environ.get("DJANGO_CD_RELEASE_DIR", os.getcwd())
        self.stdout.write(f"heartbeat of {os.path.basename(release_dir)} (pid {os.getpid()})")
        self.stdout.flush()
        while True:
            beat = {
                "pid": os.getpid(),
                "release": os.path.basename(release_dir),
                "path": release_dir,
                "notes": Note.objects.count(),
                "at": time.time(),
            }
            temporary = target.with_name(f".{target.name}.{os.getpid()}")
            temporary.write_text(json.dumps(beat))
            temporary.replace(target)
            time.sleep(options["interval"])
