"""What the database needs: pending migrations, the applied state, the way back.

Computed inside the release (``manage.py cdplan``, in its agent during a deploy),
with that release's code and the target's settings, so it sees exactly the
migrations the release would run; the planner itself is
``django_cd.migration_version.plan.database_report``, imported and typed.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django_cd.migration_version.plan import DatabaseReport
from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release

#: What ``probe`` returns: the release-side planner's report, parsed back.
MigrationReport = DatabaseReport


def probe(
    release: Release,
    target: dict[str, str | None] | None = None,
    step: str = "plan",
    lint: bool = False,
) -> MigrationReport:
    """Ask ``release`` for the migration state (and the way back to ``target``).

    With ``lint``, the release also lints its pending migrations
    (:func:`django_cd.migration_version.lint_plan`): what ``deploy --dry-run`` shows.
    """
    args = ["cdplan", *(["--lint"] if lint else [])]
    if target is not None:
        args += ["--target", json.dumps(target)]
    result = release.manage(*args, timeout=300)
    payload = _report(result.output) if result.ok else None
    if payload is None:
        raise StepFailed(
            step, "Reading the migration state of the database failed.", result.output
        )
    return DatabaseReport.from_dict(payload)


def _report(output: str) -> dict[str, Any] | None:
    """``cdplan``'s JSON line (whatever the project printed around it)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict) and "pending" in data:
                    return data
    return None


def migrate_to(release: Release, target: dict[str, str | None], step: str) -> str:
    """Migrate back to ``target`` with ``release``'s code (which knows the newer ones)."""
    current = probe(release, target, step=step)
    blocked = current.irreversible
    if blocked:
        raise StepFailed(step, "Cannot migrate back: " + "; ".join(blocked) + ".")
    outputs = []
    for app, name in current.state.items():
        wanted = target.get(app)
        if wanted == name:
            continue
        result = release.manage("migrate", app, wanted or "zero", "--noinput", timeout=600)
        outputs.append(result.output)
        if not result.ok:
            raise StepFailed(
                step, f"Migrating {app} back to {wanted or 'zero'} failed.", result.output
            )
    return "\n".join(outputs)
