"""A project's own deploy steps (an environment's ``steps``), in the engine's order.

``arrange`` gives every step of a deploy: the engine's own (``conf.BUILT_IN_STEPS``)
with the project's placed after or before the step they name, replacements in
place of the step they replace. ``run`` runs one of the project's steps in a
release, with the release's environment, and says what it did.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from django_cd import conf
from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release
from django_cd.pipeline.steps import tail


@dataclass(frozen=True)
class Planned:
    """One step of a deploy: the engine's own (``step`` None), or as the project says."""

    name: str
    step: conf.Step | None = None


def arrange(env: conf.Environment) -> list[Planned]:
    """Every step of a deploy of ``env``, in order (``backup`` included)."""
    replaced = {step.name: step for step in env.steps if step.name in conf.BUILT_IN_STEPS}
    order = [Planned(name, replaced.get(name)) for name in conf.BUILT_IN_STEPS]
    for step in env.steps:
        if step.name in conf.BUILT_IN_STEPS:
            continue
        names = [planned.name for planned in order]
        if step.before is not None:
            order.insert(names.index(step.before), Planned(step.name, step))
            continue
        assert step.after is not None
        position = names.index(step.after) + 1
        # Several steps after one step run in the order they are declared.
        while position < len(order) and _follows(order[position], step.after):
            position += 1
        order.insert(position, Planned(step.name, step))
    return order


def between(order: list[Planned], first: str, last: str) -> list[Planned]:
    """The steps strictly between ``first`` and ``last``."""
    names = [planned.name for planned in order]
    return order[names.index(first) + 1 : names.index(last)]


def describe(planned: Planned) -> str:
    """How a dry run names a step: the project's own and skipped ones say so."""
    step = planned.step
    if step is None:
        return planned.name
    if step.skip:
        return f"{planned.name} (skipped)"
    when = ", first deploy only" if step.when == "first_deploy" else ""
    return f"{planned.name} ({shlex.join(step.run)}{when})"


def run(release: Release, step: conf.Step, warnings: list[str]) -> str:
    """Run ``step`` in ``release``; ``StepFailed`` if it fails and ``on_failure`` is undo."""
    argv = list(step.run)
    if argv[0] == "manage.py":
        argv[:1] = [release.python, release.manage_py]
    result = release.host.run(
        argv, cwd=release.path, env=release.process_env(), timeout=step.timeout
    )
    command = shlex.join(step.run)
    if result.ok:
        last = tail(result.output, 1).strip()
        return f"{command}: {last}" if last else command
    failure = f"{command} failed (exit status {result.returncode}) in {result.seconds:.1f} s"
    if step.on_failure == "warn":
        warnings.append(
            f"Step {step.name}: {failure}; on_failure is 'warn', so the deploy went on."
        )
        return f"{failure} (on_failure: warn)"
    raise StepFailed(step.name, f"Step {step.name}: {failure}.", result.output)


def _follows(planned: Planned, anchor: str) -> bool:
    return (
        planned.step is not None
        and planned.step.after == anchor
        and planned.name not in (conf.BUILT_IN_STEPS)
    )
