"""``manage.py cdagent``: the release agent the deploy engine talks to (``django_cd.agent``).

Started by the engine, once per release and command; not meant to be run by hand.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from django_cd.agent import serve


class Command(BaseCommand):
    help = "Run the deploy engine's manage.py commands in this one process (JSON lines)."
    requires_system_checks: list[str] = []  # `check` is one of the commands it runs

    def handle(self, *args: Any, **options: Any) -> None:
        serve(sys.argv[0])
