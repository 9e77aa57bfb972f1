"""``manage.py cdcollect``: ``collectstatic``, unless the previous release's collection fits.

Run by the deploy engine in a new release (in its agent), with the previous
release's ``STATIC_ROOT``: when the static inputs are what that collection was
made from (``django_cd.static.fingerprint``), its files are copied instead of
collected and post-processed again. The last line of output is JSON for the engine:
``{"fingerprint": ..., "root": ..., "reused": N | null}``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from django_cd import static


class Command(BaseCommand):
    help = "Collect static files, or copy the previous release's if their inputs are unchanged."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--release", required=True, help="The release directory.")
        parser.add_argument("--previous-root", help="The previous release's STATIC_ROOT.")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = static.fingerprint(options["release"])
        storage = storages["staticfiles"]
        local = isinstance(storage, FileSystemStorage) and bool(settings.STATIC_ROOT)
        root = str(settings.STATIC_ROOT) if local else None
        reused = None
        if local and root and options["previous_root"]:
            reused = static.reuse(options["previous_root"], root, wanted)
        if reused is None:
            call_command("collectstatic", interactive=False, verbosity=1, stdout=self.stdout)
        if root:
            static.stamp(root, wanted)
        answer = {
            "fingerprint": wanted,
            "root": root,
            "reused": reused,
        }
        self.stdout.write(json.dumps(answer, sort_keys=True))
