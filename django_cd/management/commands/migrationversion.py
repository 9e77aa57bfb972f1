"""``manage.py migrationversion``: create, check and rebase ``migrations/version.txt``.

Exit codes: 0 done (or all files current with ``--check``); 1 a problem was
found or the input was refused (the message says what to do).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from django_cd.migration_version import MigrationVersionError, all_problems, create_versions
from django_cd.migration_version.rebase import rebase


class Command(BaseCommand):
    help = (
        "Create each first-party app's migrations/version.txt (the name of its leaf "
        "migration); --check them for CI; --rebase APP after a git conflict on one."
    )
    requires_system_checks: list[str] = []  # --check reports the same problems itself

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args", metavar="app_label", nargs="*", help="Only these apps (default: all)."
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true", help="Exit 1 on any mismatch.")
        mode.add_argument(
            "--recreate", action="store_true", help="Rewrite existing files from the graph."
        )
        mode.add_argument(
            "--rebase",
            metavar="APP",
            help="Renumber one side's migrations after a git conflict in APP's version.txt.",
        )
        parser.add_argument(
            "--renumber",
            choices=["incoming", "current"],
            default="incoming",
            help="With --rebase: the side to move after the other (default: incoming, "
            "the part below =======).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="With --rebase: the database whose applied migrations must not move.",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")

    def handle(self, *app_labels: str, **options: Any) -> None:
        try:
            if options["rebase"]:
                if app_labels:
                    raise CommandError("--rebase takes one app label; give no other labels.")
                self._rebase(options)
            elif options["check"]:
                self._check(app_labels, options)
            else:
                self._create(app_labels, options)
        except MigrationVersionError as error:
            raise CommandError(str(error)) from None

    def _emit(self, options: dict[str, Any], data: dict[str, Any], lines: list[str]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
        elif options["verbosity"] >= 1:
            for line in lines:
                self.stdout.write(line)

    def _create(self, app_labels: tuple[str, ...], options: dict[str, Any]) -> None:
        written = create_versions(app_labels, recreate=options["recreate"])
        lines = [
            f"{w.app.label}: {'created' if w.created else 'rewrote'} {w.app.version_path} "
            f"({w.name})"
            for w in written
        ] or ["Every version.txt already exists."]
        data = {"written": [{"app": w.app.label, "name": w.name} for w in written]}
        self._emit(options, data, lines)

    def _check(self, app_labels: tuple[str, ...], options: dict[str, Any]) -> None:
        problems = all_problems(app_labels)
        lines = [f"{p.id}: {p.msg}\n  HINT: {p.hint}" for p in problems]
        self._emit(
            options,
            {"problems": [p.__dict__ for p in problems]},
            lines or ["Every version.txt names its app's leaf."],
        )
        if problems:
            raise CommandError(f"{len(problems)} version file problem(s).")

    def _rebase(self, options: dict[str, Any]) -> None:
        result = rebase(
            options["rebase"], renumber=options["renumber"], database=options["database"]
        )
        lines = [f"{result.app.label}: renamed {m.old} -> {m.new}" for m in result.moves]
        lines += [f"{result.app.label}: rewrote dependencies in {p}" for p in result.rewritten]
        lines.append(f"{result.app.label}: version.txt now names {result.leaf}.")
        lines.append(
            f"Check with 'manage.py migrate --plan', then: git add {result.app.migrations_dir}"
        )
        data = {
            "app": result.app.label,
            "kept": result.kept,
            "leaf": result.leaf,
            "moves": [m.__dict__ for m in result.moves],
            "rewritten": [str(p) for p in result.rewritten],
        }
        self._emit(options, data, lines)
