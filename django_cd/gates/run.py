"""``evaluate``: every gate for one commit and one environment, in order."""

from __future__ import annotations

from datetime import UTC, datetime

from django_cd import conf
from django_cd.gates import deployers, policy, promotion, source, target
from django_cd.gates.result import Report, fail, ok
from django_cd.pipeline import PipelineError, Target
from django_cd.pipeline.fleet import fleet_targets
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.target import base_dir
from django_cd.testing.results import NotARepository


class CannotEvaluate(Exception):
    """The gates could not run at all (no repository, a remote target...): exit 2."""


def _reach_migration_host(env: conf.Environment, migration_target: Target) -> None:
    """A fleet's gates are asked of its migration host; without it nothing can go on
    (``--skip-unreachable`` leaves out other hosts only)."""
    try:
        migration_target.host.connect()
    except PipelineError as error:
        raise PipelineError(
            f"{error} {migration_target.host.name} is the migration host of {env.name!r}: "
            "it cannot be skipped. Bring it back, or name another with migration_host."
        ) from None


def default_ref(repo: Repository, env: conf.Environment) -> tuple[str, str]:
    """The ref deployed when none is given, and why.

    An environment with ``promote_from`` gets the newest commit that passed it
    (its ``cd/<from>/<n>`` tag); any other gets the checkout's HEAD.
    """
    if env.promote_from is None:
        return "HEAD", "the checkout's HEAD"
    source_env = conf.get_environment(env.promote_from)
    newest = promotion.newest(repo, source_env)
    if newest is None:
        return "HEAD", f"HEAD: no commit has passed {source_env.name} yet"
    return newest.tag, f"the newest commit that passed {source_env.name}"


def evaluate(
    env: conf.Environment,
    ref: str | None = None,
    *,
    allow_dirty: bool = False,
    force_reason: str | None = None,
    now: datetime | None = None,
    repository: Repository | None = None,
    defer_target: bool = False,
) -> Report:
    """Run the gates; nothing changes. ``ref`` None means :func:`default_ref`.

    ``defer_target``: leave out the target gates, which ``deploy`` asks of its new
    release (``target.release_gates``) once the release is unpacked, under the lock,
    so that one Django process serves the gates and the deploy.
    """
    deploy_target: Target | None = None
    try:
        repo = repository or Repository.find(conf.get_config()["REPOSITORY"], base_dir())
        targets = fleet_targets(env)
        deploy_target = targets[0]  # a fleet's: the migration host, which holds the lock
        if len(targets) > 1:
            _reach_migration_host(env, deploy_target)
        if ref is None:
            ref, _ = default_ref(repo, env)
        report = Report(env=env.name, ref=ref, force_reason=force_reason)
        report.deployer = deployers.identity(repo.identity())
        report.add(source.tree_gate(repo, env, allow_dirty))
        try:
            commit = repo.resolve(ref)
        except PipelineError as error:
            hint = "Fetch, or name an existing branch, tag or commit."
            report.add(fail("ref", str(error), hint))
            return report
        report.commit = commit
        report.add(ok("ref", f"{ref} is {commit[:12]} ({repo.subject(commit)})."))
        report.add(policy.promotion_gate(repo, env, commit))
        report.add(policy.pipelines_gate(env, commit))
        report.add(policy.window_gate(env, now or datetime.now(UTC)))
        report.add(policy.deployer_gate(env, report.deployer))
        report.add(source.secrets_gate(repo, env, commit))
        if defer_target:  # room to unpack it, at least, before the deploy does
            report.add(target.disk_gate(deploy_target, len(repo.archive(commit))))
        else:
            for gate in target.target_gates(deploy_target, repo, commit):
                report.add(gate)
    except (PipelineError, NotARepository) as error:
        raise CannotEvaluate(str(error)) from None
    finally:
        if deploy_target is not None:
            deploy_target.host.close()
    return report
