"""Migration version files and migration safety.

Each first-party app keeps ``migrations/version.txt`` naming its leaf
migration, so two branches that each add a migration conflict in git on that
one line. This package keeps the files current, checks them, resolves such a
conflict by renumbering one side's whole chain, and lints the migrations a
database has not applied yet (see docs/migrations.md).
"""

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
from django_cd.migration_version.rebase import Move, RebaseResult, rebase
from django_cd.migration_version.versions import (
    Written,
    all_problems,
    create_versions,
    update_versions,
)
from django_cd.project import is_first_party

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
    "rebase",
    "require_app",
    "rollback_plan",
    "update_versions",
]
