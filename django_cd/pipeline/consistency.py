"""Does the database match the code that serves? Asked before any command acts.

A deploy killed while ``migrate`` ran, or a ``migrate`` run by hand, leaves
a database the serving code does not expect: migrations it needs that are
missing, or applied migrations its code does not know. Every engine command
compares first; ``deploy`` and ``rollback`` refuse to go on as if nothing
happened, and ``manage.py repair`` puts it right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django_cd.pipeline import migrations
from django_cd.pipeline.errors import StepFailed

if TYPE_CHECKING:
    from django_cd.pipeline.target import Target


@dataclass(frozen=True)
class DatabaseCheck:
    """The database as the release ``release`` sees it."""

    release: str | None
    #: None when the database could not be asked (``error`` says why).
    matches: bool | None
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "matches_current": self.matches,
            "missing": self.missing,
            "unknown": self.unknown,
            "error": self.error,
        }

    def problem(self, env_name: str) -> str | None:
        """The loud message for a mismatch, naming what to run; None when it matches."""
        if self.matches is not False:
            return None
        parts = []
        if self.missing:
            parts.append(f"migrations it needs are not applied ({', '.join(self.missing)})")
        if self.unknown:
            parts.append(
                f"applied migrations its code does not know ({', '.join(self.unknown)}): "
                "a deploy that died or a migrate run by hand applied them"
            )
        return (
            f"The database does not match release {self.release}, which is current: "
            f"{'; '.join(parts)}. Run manage.py status --env={env_name} to see what "
            f"happened, then manage.py repair --env={env_name}."
        )


def compare(report: migrations.MigrationReport, expected: dict[str, str | None]) -> list[str]:
    """Apps whose applied state differs from ``expected`` (a release's recorded state),
    as ``app: expected -> found`` lines; ``report`` may come from newer code."""
    differences = []
    for app in sorted(set(expected) | set(report.state)):
        want, found = expected.get(app), report.state.get(app)
        if want != found:
            differences.append(f"{app}: {want or 'none'} -> {found or 'none'}")
    return differences


def check(target: Target, release_id: str | None = None) -> DatabaseCheck:
    """Ask ``release_id`` (default: the current release) whether the database matches it."""
    host, layout = target.host, target.layout
    release_id = release_id or layout.current_release(host)
    if release_id is None:
        return DatabaseCheck(None, True)
    if not host.exists(layout.release(release_id)):
        return DatabaseCheck(
            release_id,
            None,
            error=f"release {release_id} is not on the host (current is dangling)",
        )
    try:
        report = migrations.probe(target.release(release_id), step="database")
    except StepFailed as error:
        lines = target.mask(error.output).strip().splitlines()
        why = lines[-1] if lines else str(error)
        return DatabaseCheck(release_id, None, error=f"{error} {why}")
    return DatabaseCheck(release_id, report.matches, report.pending, report.unknown)
