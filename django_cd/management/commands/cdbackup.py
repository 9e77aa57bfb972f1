"""``manage.py cdbackup``: the deploy's database backup, at a chosen compression level.

django-dbbackup's connector makes the dump, as ``dbbackup`` would (the same
format, restored the same way); ``--compression N`` passes ``-Z N`` to
``pg_dump``, whose custom format compresses at its own default level
otherwise. On a large database that compression is most of a backup's time:
a low level trades a slightly larger file for a much faster backup
(BENCHMARKS.md). Other databases' dumps are written as their connector makes
them, uncompressed, and the output says the level did not apply.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from dbbackup.db.base import get_connector
from dbbackup.db.exceptions import DumpError
from dbbackup.db.postgresql import PgDumpBinaryConnector
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Back up the default database to a file (the deploy's backup step)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", required=True, help="The file to write.")
        parser.add_argument(
            "--compression", type=int, choices=range(10), help="pg_dump's level, 0-9."
        )
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        connector = get_connector(options["database"])
        level = options["compression"]
        applied = isinstance(connector, PgDumpBinaryConnector) and level is not None
        if applied:
            connector.dump_suffix = f"{connector.dump_suffix or ''} -Z {level}".strip()
        try:
            dump = connector.create_dump()
        except DumpError as error:
            raise CommandError(f"The dump failed: {error}") from None
        path = options["output"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(dump, target)
        size = os.path.getsize(path)
        if applied:
            how = f"pg_dump -Z {level}"
        elif level is not None:
            how = f"compression {level} not applied: only pg_dump's custom format takes it"
        else:
            how = "the connector's defaults"
        self.stdout.write(f"Wrote {size} bytes to {path} ({how}).")
