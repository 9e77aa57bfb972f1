"""Migration version files and migration safety.

Each first-party app keeps ``migrations/version.txt`` naming its leaf
migration, so two branches that each add a migration conflict in git on that
one line. This package keeps the files current, checks them, resolves such a
conflict by renumbering one side's whole chain, and lints the migrations a
database has not applied yet (see docs/migrations.md).

Names are exported lazily: ``AppConfig.ready()`` imports the checks on every
start-up, web workers included, which should not pay for the rebase and the
lints (and django-migration-linter) they never use. The ``rebase`` function is
imported from its module, ``django_cd.migration_version.rebase``: a lazy name
cannot be the name of a submodule, which binds over it once imported.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_cd.migration_version.errors import MigrationVersionError
    from django_cd.migration_version.firstparty import VersionedApp, require_app
    from django_cd.migration_version.lints import Finding, Report, lint_plan
    from django_cd.migration_version.plan import (
        AppliedState,
        Plan,
        Step,
        applied_state,
        migrate_arguments,
        migrate_targets,
        pending_plan,
        plan_targets,
        rollback_plan,
    )
    from django_cd.migration_version.rebase import Move, RebaseResult
    from django_cd.migration_version.versions import (
        Written,
        all_problems,
        create_versions,
        update_versions,
    )
    from django_cd.project import is_first_party

_EXPORTS = {
    "AppliedState": "django_cd.migration_version.plan",
    "Finding": "django_cd.migration_version.lints",
    "MigrationVersionError": "django_cd.migration_version.errors",
    "Move": "django_cd.migration_version.rebase",
    "Plan": "django_cd.migration_version.plan",
    "RebaseResult": "django_cd.migration_version.rebase",
    "Report": "django_cd.migration_version.lints",
    "Step": "django_cd.migration_version.plan",
    "VersionedApp": "django_cd.migration_version.firstparty",
    "Written": "django_cd.migration_version.versions",
    "all_problems": "django_cd.migration_version.versions",
    "applied_state": "django_cd.migration_version.plan",
    "create_versions": "django_cd.migration_version.versions",
    "is_first_party": "django_cd.project",
    "lint_plan": "django_cd.migration_version.lints",
    "migrate_arguments": "django_cd.migration_version.plan",
    "migrate_targets": "django_cd.migration_version.plan",
    "pending_plan": "django_cd.migration_version.plan",
    "plan_targets": "django_cd.migration_version.plan",
    "require_app": "django_cd.migration_version.firstparty",
    "rollback_plan": "django_cd.migration_version.plan",
    "update_versions": "django_cd.migration_version.versions",
}


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(import_module(module), name)


__all__ = [
    "AppliedState",
    "Finding",
    "MigrationVersionError",
    "Move",
    "Plan",
    "RebaseResult",
    "Report",
    "Step",
    "VersionedApp",
    "Written",
    "all_problems",
    "applied_state",
    "create_versions",
    "is_first_party",
    "lint_plan",
    "migrate_arguments",
    "migrate_targets",
    "pending_plan",
    "plan_targets",
    "require_app",
    "rollback_plan",
    "update_versions",
]
