"""What the database needs: pending migrations, the applied state, the way back.

Computed inside the release (``manage.py cdplan``, in its agent during a deploy),
with that release's code and the target's settings, so it sees exactly the
migrations the release would run; the planner itself is
``django_cd.migration_version.plan.database_report``, imported and typed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release


@dataclass(frozen=True)
class MigrationReport:
    """The database as one release sees it."""

    #: app label -> last applied migration name (None: none applied).
    state: dict[str, str | None]
    #: ``app.name`` of every migration ``migrate`` would apply.
    pending: list[str]
    #: Migrations to unapply to reach the requested target, newest first,
    #: each with the operations that cannot be reversed (empty when reversible).
    backward: list[dict[str, Any]] = field(default_factory=list)
    #: ``lint_plan``'s report of the pending migrations (summary, findings), when asked
    #: for and the release's django-cd has it.
    lints: dict[str, Any] | None = None
    #: ``app.name`` of applied migrations of the release's apps that its code does not
    #: know: a newer release (or a dead deploy) applied them.
    unknown: list[str] = field(default_factory=list)
    #: app label -> the latest migration of the release's code.
    leaves: dict[str, str] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        """The database is exactly what the release's code expects."""
        return not self.pending and not self.unknown

    @property
    def irreversible(self) -> list[str]:
        """Backward migrations that block a migrate back, with why."""
        return [
            f"{m['name']} ({', '.join(m['irreversible'])} cannot be reversed)"
            for m in self.backward
            if m["irreversible"]
        ]


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
    return MigrationReport(
        payload["state"],
        payload["pending"],
        payload["backward"],
        payload["lints"],
        payload["unknown"],
        payload["leaves"],
    )


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
