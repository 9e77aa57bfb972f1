"""Running and printing the predeploy gates: shared by ``predeploy`` and ``deploy``."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_cd import conf, gates

#: Exit status of a failed gate, and of gates that could not be evaluated.
FAILED, CANNOT_EVALUATE = 1, 2


def add_force_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="Pass the policy gates (promotion, pipelines, window, risky migrations) "
        "that fail; needs --reason, which is recorded.",
    )
    parser.add_argument("--reason", default=None, help="Why --force is used (recorded).")


def force_reason(options: dict[str, Any]) -> str | None:
    """The reason recorded for ``--force``; each of the two needs the other."""
    reason = (options.get("reason") or "").strip()
    if options.get("force") and not reason:
        raise CommandError("--force needs --reason 'why', which is recorded in the history.")
    if reason and not options.get("force"):
        raise CommandError("--reason goes with --force; without --force nothing is overridden.")
    return reason or None


def evaluate(env: conf.Environment, ref: str | None, **kwargs: Any) -> gates.Report:
    try:
        return gates.evaluate(env, ref, **kwargs)
    except gates.CannotEvaluate as error:
        raise CommandError(
            f"The gates could not be evaluated: {error}", returncode=CANNOT_EVALUATE
        ) from None


def print_table(command: BaseCommand, report: gates.Report) -> None:
    """gate | result | message, the hint under its gate, then a summary line."""
    commit = report.commit[:12] if report.commit else "?"
    command.stdout.write(f"Predeploy gates for {report.ref} ({commit}) to {report.env}:")
    # One width for every table, whichever gates it shows ("migrations" is the
    # longest built-in name): a deploy's table before and after the target gates.
    width = max(len("migrations"), *(len(g.name) for g in report.gates))
    command.stdout.write(f"  {'gate':<{width}}  result  message")
    style = {
        gates.OK: command.style.SUCCESS,
        gates.WARN: command.style.WARNING,
        gates.FAIL: command.style.ERROR,
    }
    for gate in report.gates:
        result = style[gate.result](f"{gate.result:<6}")
        command.stdout.write(f"  {gate.name:<{width}}  {result}  {gate.message}")
        if gate.hint and gate.result != gates.OK:
            command.stdout.write(f"  {'':<{width}}          hint: {gate.hint}")
    counts = report.counts()
    verdict = "may deploy" if report.ok else "may NOT deploy"
    command.stdout.write(
        f"{counts[gates.OK]} ok, {counts[gates.WARN]} warn, {counts[gates.FAIL]} fail: {verdict}."
    )


def refusal(report: gates.Report) -> CommandError:
    """The loud refusal: each failed gate with what is wrong and what to do."""
    return CommandError(report.refusal(), returncode=FAILED)
