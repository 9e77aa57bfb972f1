"""``manage.py scrub_personal_data --yes``: blank what identifies people in a copied database.

The ``scrub`` hook of django-cd's testing instances runs it on each fresh copy of
the staging database before the instance serves (docs/instances.md): e-mail
addresses are blanked, passwords made unusable, notes' authors anonymised. It
refuses to run without ``--yes``: on the wrong database it destroys data.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from notes.models import Note


class Command(BaseCommand):
    help = "Blank e-mail addresses and passwords (for copies of the database only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--yes", action="store_true", help="Really scrub this database.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["yes"]:
            raise CommandError("This blanks every e-mail and password: pass --yes on a copy.")
        unusable = make_password(None)
        with transaction.atomic():
            users = get_user_model().objects.update(email="", password=unusable)
            notes = Note.objects.exclude(author="").update(author="someone")
        self.stdout.write(f"Scrubbed {users} user(s) and {notes} note author(s).")
