"""The watch after a switch: smoke checks again, and the new release's 5xx count.

For the environment's ``watch["seconds"]`` the deploy keeps probing: every
``interval`` seconds the smoke checks run once more (no grace: the release
already started) and the count of 5xx responses the new release served is read
from its cache (``manage.py responsecounts`` run in the release). A failed check
or more than ``max_5xx`` errors fails the ``watch`` step, which the deploy
treats like any failure after the switch: automatic rollback.
"""

from __future__ import annotations

import json
import time

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release
from django_cd.pipeline.steps import StepRunner
from django_cd.smoke import SmokeRun, config
from django_cd.smoke.config import WatchOptions

READ_TIMEOUT = 60.0


def watch_step(runner: StepRunner, release: Release, url: str) -> None:
    """The ``watch`` step, when the environment has one (``watch["seconds"]`` > 0)."""
    options = config.watch_options(release.env)
    if options.seconds > 0:
        runner.run("watch", lambda: watch(release, url, options))


def watch(release: Release, url: str, options: WatchOptions) -> str:
    """Probe ``release`` for ``options.seconds``; ``StepFailed("watch")`` when it degrades."""
    started = time.monotonic()
    deadline = started + options.seconds
    rounds = 0
    counting = True
    errors = 0
    while True:
        rounds += 1
        report = SmokeRun(release.env, url, release.id, grace_seconds=0).run()
        if not report.ok:
            raise StepFailed(
                "watch",
                f"After {time.monotonic() - started:.0f} s of the watch: {report.summary()}",
                "\n".join(report.table()),
            )
        counting, errors = five_xx(release)
        if errors > options.max_5xx:
            raise StepFailed(
                "watch",
                f"Release {release.id} served {errors} 5xx response(s) in the first "
                f"{time.monotonic() - started:.0f} s, more than the {options.max_5xx} "
                "the environment's watch allows (max_5xx).",
            )
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(options.interval, left))
    seen = (
        f"{errors} 5xx response(s)" if counting else "5xx not counted (no ResponseCountMiddleware)"
    )
    return f"{rounds} round(s) in {time.monotonic() - started:.0f} s: checks passed, {seen}"


def five_xx(release: Release) -> tuple[bool, int]:
    """(whether the release counts responses, its 5xx so far), read in the release."""
    result = release.manage("responsecounts", f"--release={release.id}", timeout=READ_TIMEOUT)
    data = None
    if result.ok and "{" in result.output:
        try:  # stderr (warnings) may share the output: read the JSON object alone
            data, _ = json.JSONDecoder().raw_decode(result.output, result.output.index("{"))
        except ValueError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("counts"), dict):
        raise StepFailed(
            "watch", "Reading the new release's response counts failed.", result.output
        )
    return bool(data.get("counting")), int(data["counts"].get("5xx", 0))
