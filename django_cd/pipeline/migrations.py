"""What the database needs: pending migrations, the applied state, the way back.

Computed inside a release's own process (``manage.py shell -c``), with that
release's code and the target's settings, so it sees exactly the migrations
the release would run. This is deliberately one small module: when
``django_cd.migration_version`` lands, these functions route to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.release import Release

MARKER = "@@django-cd-probe@@"

# Runs in the release: prints one JSON object after MARKER. Self-contained, so
# it works with any release, including ones older than this module.
PROBE_CODE = """
import json
from django.db import connections, DEFAULT_DB_ALIAS
from django.db.migrations.executor import MigrationExecutor
executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
graph, applied = executor.loader.graph, executor.loader.applied_migrations
apps = sorted({app for app, _ in graph.nodes})
state = {}
for app in apps:
    names = [n for leaf in graph.leaf_nodes(app) for n in graph.forwards_plan(leaf)]
    mine = [n for n in names if n[0] == app and n in applied]
    state[app] = mine[-1][1] if mine else None
pending = [f"{m.app_label}.{m.name}" for m, back in
           executor.migration_plan(graph.leaf_nodes()) if not back]
replaced = {r for m in executor.loader.disk_migrations.values() for r in (m.replaces or [])}
unknown = sorted(f"{app}.{name}" for app, name in applied
                 if app in apps and (app, name) not in graph.nodes and (app, name) not in replaced)
leaves = {}
for app, name in graph.leaf_nodes():
    leaves[app] = max(leaves.get(app) or "", name)
target = json.loads(%(target)r)
backward = []
if target is not None:
    targets = [(app, target.get(app)) for app in apps]
    for m, back in executor.migration_plan(targets):
        if back:
            blocking = [type(op).__name__ for op in m.operations if not op.reversible]
            backward.append({"name": f"{m.app_label}.{m.name}", "irreversible": blocking})
lints = None
if %(lint)r and pending:
    try:
        from django_cd.migration_version import lint_plan
    except ImportError:  # a release whose django-cd has no lints
        pass
    else:
        try:
            report = lint_plan()
            lints = {"summary": report.summary, "needs_restore": report.needs_restore,
                     "findings": [f.to_dict() for f in report.findings]}
        except Exception as error:
            lints = {"summary": f"the lints failed: {type(error).__name__}", "findings": []}
print(%(marker)r + json.dumps(
    {"state": state, "pending": pending, "backward": backward, "lints": lints,
     "unknown": unknown, "leaves": leaves}))
"""


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
    code = PROBE_CODE % {"target": json.dumps(target), "marker": MARKER, "lint": lint}
    result = release.manage("shell", "-v", "0", "-c", code, timeout=300)
    payload = None
    for line in result.output.splitlines():
        if line.startswith(MARKER):
            payload = json.loads(line[len(MARKER) :])
    if not result.ok or payload is None:
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
