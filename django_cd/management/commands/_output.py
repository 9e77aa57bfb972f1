"""Printing shared by the deploy commands: step lines, summaries, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from django_cd import conf
from django_cd.pipeline import Outcome, PipelineError, StepResult, Target


@contextmanager
def engine_errors(interrupted: str = "Interrupted (Ctrl-C or SIGTERM).") -> Iterator[None]:
    """Turn the engine's refusals and failures, and Ctrl-C, into ``CommandError``."""
    try:
        yield
    except PipelineError as error:
        raise CommandError(str(error)) from None
    except KeyboardInterrupt:
        raise CommandError(interrupted) from None


def environment(name: str) -> conf.Environment:
    """The environment called ``name``, or a ``CommandError`` naming the known ones."""
    try:
        return conf.get_environment(name)
    except conf.UnknownEnvironment as error:
        raise CommandError(str(error)) from None
    except ImproperlyConfigured as error:
        raise CommandError(f"{error}\nRun manage.py check for details.") from None


def warn_if_database_differs(command: BaseCommand, target: Target) -> None:
    """Say loudly when the database does not match the release that serves."""
    from django_cd.pipeline import consistency

    problem = consistency.check(target).problem(target.env.name)
    if problem:
        command.stderr.write(command.style.ERROR(f"WARNING: {problem}"))


def step_printer(command: BaseCommand, verbosity: int) -> Callable[[StepResult], None] | None:
    """Print one line per step as it ends (verbosity >= 1)."""
    if verbosity < 1:
        return None

    def print_step(step: StepResult) -> None:
        style = {
            "ok": command.style.SUCCESS,
            "failed": command.style.ERROR,
            "skipped": command.style.WARNING,
        }[step.status]
        detail = f"  {step.detail}" if step.detail else ""
        where = f"{step.host}  " if step.host else ""  # a deploy to several hosts
        command.stdout.write(
            f"  {where}{step.name:<14}{style(f'{step.status:<8}')}{step.seconds:6.2f}s{detail}"
        )

    return print_step


def write_json(stdout: OutputWrapper, data: Any) -> None:
    stdout.write(json.dumps(data, indent=2, sort_keys=True))


def summary(command: BaseCommand, outcome: Outcome) -> None:
    """The closing lines of a deploy or rollback."""
    what = f"{outcome.action} of {outcome.release} to {outcome.env}"
    if outcome.status == "success":
        extra = f", tagged {outcome.tag}" if outcome.tag else ""
        command.stdout.write(
            command.style.SUCCESS(
                f"{what[0].upper()}{what[1:]} succeeded in {outcome.seconds:.1f} s{extra}."
            )
        )
        if len(outcome.hosts) > 1:  # a fleet: each host's own smoke line said it answers
            hosts = ", ".join(outcome.hosts)
            command.stdout.write(f"  {outcome.release} is current on {hosts}")
        elif outcome.url:
            command.stdout.write(f"  {outcome.url} serves {outcome.release}")
    for warning in outcome.warnings:
        command.stderr.write(command.style.WARNING(f"Warning: {warning}"))


def report(command: BaseCommand, outcome: Outcome, *, as_json: bool, verbosity: int) -> None:
    """Print a deploy's or rollback's outcome; raise the loud failure unless it succeeded."""
    if as_json:
        write_json(command.stdout, outcome.as_dict())
    elif verbosity >= 1:
        summary(command, outcome)
    if outcome.status != "success":
        raise failure(outcome)


def failure(outcome: Outcome) -> CommandError:
    """The loud failure: what failed, its output, and what was undone."""
    lines = [
        f"{outcome.action.upper()} FAILED at step {outcome.failed_step!r}: {outcome.error}",
    ]
    if outcome.error_output:
        lines += ["--- output (last lines, secrets masked) ---", outcome.error_output, "---"]
    if outcome.status == "rolled_back":
        lines.append(
            f"Rolled back automatically: {outcome.previous or 'nothing'} is current again."
        )
    elif outcome.action == "deploy":
        lines.append(
            f"Nothing was switched: {outcome.previous or 'no release'} is still current; "
            f"the half-made release {outcome.release} was removed."
        )
    for step in outcome.rollback_steps:
        lines.append(f"  undo {step.name}: {step.status} {step.detail}")
    lines += [f"Warning: {w}" for w in outcome.warnings]
    return CommandError("\n".join(lines))
