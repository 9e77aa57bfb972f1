"""``manage.py flags list|show|on|off|percent|conditions|export|import|stale|history|reconcile``.

Exit status: 0 done; 1 refused (unknown flag, bad value, import not confirmed),
with a message naming the problem and the fix; nothing is changed then.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from django_cd.flags import changes, lifecycle, transfer
from django_cd.flags import state as flag_state
from django_cd.flags.conditions import KINDS, describe
from django_cd.flags.errors import FlagError

NO_WAFFLE = (
    "django-waffle is not installed in this project: pip install "
    "'django-cd-deploy[flags]' and add 'waffle' to INSTALLED_APPS (docs/flags.md)."
)

MUTATIONS = ("on", "off", "percent")


class Command(BaseCommand):
    help = "Feature flags: list, show, switch, set conditions, export/import, stale, history."
    # Deploys and rollbacks read this command's JSON, and a rollback must work when
    # a check fails: the checks (W100 expired flags...) belong to `manage.py check`.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for name, text in (
            ("list", "Every flag with its state."),
            ("stale", "Declared flags past their expiry date."),
            ("reconcile", "Create declared flags (off); report undeclared ones."),
            ("export", "Every flag's state (--json: the snapshot a release records)."),
        ):
            _json(sub.add_parser(name, help=text))
        for name, text in (
            ("show", "One flag with its conditions."),
            ("history", "The changes of one flag, newest first."),
        ):
            _json(sub.add_parser(name, help=text)).add_argument("name")
        for name, text in (("on", "On for everyone."), ("off", "Off for everyone.")):
            _audit(_json(sub.add_parser(name, help=text))).add_argument("name")
        percent = _audit(_json(sub.add_parser("percent", help="On for N % of users.")))
        percent.add_argument("name")
        percent.add_argument("percent", help="0 to 100.")
        self._conditions_parser(sub.add_parser("conditions", help="Show or set conditions."))
        imports = _audit(_json(sub.add_parser("import", help="Import states (a reviewed diff).")))
        imports.add_argument("file", help="A file written by `flags export --json`; - for stdin.")
        imports.add_argument(
            "--source",
            choices=("import", "rollback"),
            default="import",
            help="What the audit log records as the change's origin.",
        )
        imports.add_argument("--yes", action="store_true", help="Apply without asking.")
        imports.add_argument("--dry-run", action="store_true", help="Show the diff only.")

    def _conditions_parser(self, parser: ArgumentParser) -> None:
        _audit(_json(parser)).add_argument("name")
        kinds = ", ".join(KINDS)
        parser.add_argument(
            "--include",
            action="append",
            default=[],
            metavar="KIND=V1,V2",
            help=f"On when this matches; KIND is one of {kinds}.",
        )
        parser.add_argument(
            "--exclude",
            action="append",
            default=[],
            metavar="KIND=V1,V2",
            help="Off when this matches (an exclude wins).",
        )
        parser.add_argument("--on-after", help="ISO time the flag starts being on.")
        parser.add_argument("--off-after", help="ISO time the flag stops being on.")
        parser.add_argument(
            "--inherit", action="store_true", help="parent:child defers to parent."
        )
        parser.add_argument("--clear", action="store_true", help="Remove every condition.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if not apps.is_installed("waffle"):
            raise CommandError(NO_WAFFLE)
        try:
            getattr(self, f"do_{action}")(options)
        except FlagError as error:
            raise CommandError(str(error)) from None

    # Reading ------------------------------------------------------------------

    def do_list(self, options: dict[str, Any]) -> None:
        rows = lifecycle.listing()
        if options["json"]:
            return self._json(rows)
        for row in rows:
            marks = "" if row["declared"] else "  [not declared in code]"
            marks += "  [stale]" if row["stale"] else ""
            self.stdout.write(f"{row['name']:30} {row['words']}{marks}")
        if not rows:
            self.stdout.write("No flags.")

    def do_show(self, options: dict[str, Any]) -> None:
        found = changes.require(options["name"])
        row = next(r for r in lifecycle.listing() if r["name"] == found["name"])
        if options["json"]:
            return self._json(row)
        self.stdout.write(f"{row['name']}: {row['words']}")
        for condition in row["conditions"]:
            self.stdout.write(f"  - {describe(condition)}")
        if row["declaration"]:
            d = row["declaration"]
            self.stdout.write(
                f"  declared: {d['kind']}, owner {d['owner'] or '-'}, "
                f"expires {d['expires'] or 'never'}"
            )

    def do_history(self, options: dict[str, Any]) -> None:
        changes.require(options["name"])
        entries = changes.history(options["name"])
        if options["json"]:
            return self._json(entries)
        for e in entries:
            self.stdout.write(
                f"{e['at'][:19]} {e['by']} ({e['source']}): {e['old_state'] or 'absent'} -> "
                f"{e['new_state']}"
                + (f"  {e['reason']}" if e["reason"] else "")
                + (f"  [release {e['release']}]" if e["release"] else "")
            )

    def do_stale(self, options: dict[str, Any]) -> None:
        rows = lifecycle.stale()
        if options["json"]:
            return self._json(rows)
        for row in rows:
            self.stdout.write(
                f"{row['name']:30} {row['kind']}, owner {row['owner'] or '-'}: {row['why']}"
            )
        if not rows:
            self.stdout.write("No stale flags.")

    def do_export(self, options: dict[str, Any]) -> None:
        data = transfer.snapshot()
        if options["json"]:
            return self._json(data)
        for found in data["flags"]:
            self.stdout.write(f"{found['name']:30} {transfer.describe_state(found)}")

    # Changing -------------------------------------------------------------------

    def do_reconcile(self, options: dict[str, Any]) -> None:
        result = lifecycle.reconcile(by=options.get("by") or "")
        if options["json"]:
            return self._json(result)
        self.stdout.write(f"Created (off): {', '.join(result['created']) or 'none'}")
        self.stdout.write(f"Not declared in code: {', '.join(result['undeclared']) or 'none'}")

    def do_on(self, options: dict[str, Any]) -> None:
        self._report(changes.turn_on(options["name"], **_who(options)), options)

    def do_off(self, options: dict[str, Any]) -> None:
        self._report(changes.turn_off(options["name"], **_who(options)), options)

    def do_percent(self, options: dict[str, Any]) -> None:
        entry = changes.set_percent(options["name"], options["percent"], **_who(options))
        self._report(entry, options)

    def do_conditions(self, options: dict[str, Any]) -> None:
        setting = (
            options["include"]
            or options["exclude"]
            or options["clear"]
            or any(options[k] for k in ("on_after", "off_after", "inherit"))
        )
        if not setting:
            return self.do_show(options)
        conditions = [_condition(t, False) for t in options["include"]]
        conditions += [_condition(t, True) for t in options["exclude"]]
        entry = changes.set_conditions(
            options["name"],
            conditions,
            on_after=options["on_after"],
            off_after=options["off_after"],
            inherit=options["inherit"],
            **_who(options),
        )
        self._report(entry, options)

    def do_import(self, options: dict[str, Any]) -> None:
        if options["file"] == "-":
            states = transfer.load_text(sys.stdin.read(), "standard input")
        else:
            states = transfer.read_file(options["file"])
        entries = transfer.diff(states)
        if options["json"] and (options["dry_run"] or not entries):
            return self._json({"diff": entries, "applied": False})
        if not options["json"]:
            for line in transfer.diff_lines(entries) or ["Nothing to change."]:
                self.stdout.write(line)
        if not entries or options["dry_run"]:
            return None
        if not options["yes"] and not self._confirm(len(entries)):
            raise CommandError("Nothing changed: re-run with --yes to apply this diff.")
        applied = transfer.apply_states(
            states,
            by=options["by"] or changes.default_actor(),
            reason=options["reason"] or f"imported from {options['file']}",
            source=options["source"],
        )
        if options["json"]:
            return self._json({"diff": applied, "applied": True})
        self.stdout.write(f"Applied {len(applied)} change(s).")

    def _confirm(self, count: int) -> bool:
        if not sys.stdin.isatty():
            return False
        answer = input(f"Apply these {count} change(s)? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    # Output ---------------------------------------------------------------------

    def _report(self, entry: Any, options: dict[str, Any]) -> None:
        found = flag_state.read(options["name"])
        if options["json"]:
            return self._json({"changed": entry is not None, "flag": found})
        verb = "now" if entry is not None else "already"
        self.stdout.write(f"{options['name']} is {verb} {transfer.describe_state(found)}.")

    def _json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, sort_keys=True))


def _json(parser: ArgumentParser) -> ArgumentParser:
    parser.add_argument("--json", action="store_true", help="Print JSON.")
    return parser


def _audit(parser: ArgumentParser) -> ArgumentParser:
    parser.add_argument("--reason", default="", help="Why; recorded in the audit log.")
    parser.add_argument("--by", default="", help="Who (default: the OS user).")
    return parser


def _who(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "by": options["by"] or changes.default_actor(),
        "reason": options["reason"],
        "source": "command",
    }


def _condition(text: str, exclude: bool) -> dict[str, Any]:
    kind, sep, values = text.partition("=")
    if not sep or not values:
        raise FlagError(f"{text!r} is not KIND=VALUE[,VALUE...], e.g. environment=staging.")
    kind = kind.strip()
    value: Any = values.strip() if kind == "percent" else values.split(",")
    from django_cd.flags.conditions import validate

    return validate({"kind": kind, "value": value, "exclude": exclude})
