"""The environment's rules: promotion, required pipelines, deploy window, deployers."""

from __future__ import annotations

from datetime import datetime

from django_cd import conf
from django_cd.gates import deployers, promotion, window
from django_cd.gates.result import Gate, fail, ok
from django_cd.pipeline.gitrepo import Repository
from django_cd.testing import results


def promotion_gate(repo: Repository, env: conf.Environment, commit: str) -> Gate:
    """With ``promote_from``, the commit passed that environment (docs/predeploy.md)."""
    if env.promote_from is None:
        return ok("promotion", f"{env.name} takes any commit (no promote_from).")
    source = conf.get_environment(env.promote_from)
    passed = promotion.pass_of(repo, source, commit)
    if passed is not None:
        return ok("promotion", f"{commit[:12]} passed {source.name} as {passed.tag}.")
    newest = promotion.newest(repo, source)
    offer = (
        f"The newest commit that passed {source.name} is {newest.commit[:12]} ({newest.tag}): "
        f"deploy --env={env.name} without --ref deploys it."
        if newest
        else f"No commit has passed {source.name} yet: deploy --env={source.name} first."
    )
    return fail(
        "promotion",
        f"{commit[:12]} has not passed {source.name} (no successful deploy tagged "
        f"cd/{source.name}/<n> points at it).",
        f"{offer} Or --force --reason '...' (recorded).",
        overridable=True,
    )


def pipelines_gate(env: conf.Environment, commit: str) -> Gate:
    """Each required pipeline has recorded, passing evidence for this exact commit."""
    required = env.required_pipelines
    if not required:
        return ok("pipelines", f"{env.name} requires no test pipeline.")
    problems = []
    for name in required:
        result = results.latest(commit, name)
        if result is None:
            problems.append(f"{name}: no result recorded")
        elif not result.passed:
            c = result.counts
            problems.append(
                f"{name}: failed ({c.run} run, {c.failures} failures, {c.errors} errors, "
                f"{c.skipped} skipped)"
            )
    if not problems:
        return ok("pipelines", f"{', '.join(required)} passed for {commit[:12]}.")
    missing = [p.split(":")[0] for p in problems]
    return fail(
        "pipelines",
        f"Required pipelines lack a pass for {commit[:12]}: {'; '.join(problems)}.",
        f"On a clean checkout of {commit[:12]}: manage.py test --pipeline={','.join(missing)} "
        "(runs with test labels, -k or local changes never count).",
        overridable=True,
    )


def window_gate(env: conf.Environment, now: datetime) -> Gate:
    """Inside the ``deploy_window``, when there is one."""
    if env.deploy_window is None:
        return ok("window", f"{env.name} has no deploy window: any time.")
    try:
        ranges = window.parse(env.deploy_window)
    except window.BadWindow as error:
        return fail("window", f"deploy_window cannot be read: {error}", "See docs/predeploy.md.")
    when = window.clock(now, ranges)
    if window.is_open(ranges, now):
        return ok("window", f"{when} is inside the deploy window {env.deploy_window!r}.")
    return fail(
        "window",
        f"{when} is outside the deploy window {env.deploy_window!r}.",
        "Deploy inside the window, when someone can react, or --force --reason '...'.",
        overridable=True,
    )


def deployer_gate(env: conf.Environment, who: dict[str, str]) -> Gate:
    """The deployer is listed in ``deployers`` (a guard against mistakes, not security)."""
    if not env.deployers:
        return ok("deployer", f"{env.name} lists no deployers: anyone may deploy.")
    entry = deployers.matching(env.deployers, who)
    if entry is not None:
        return ok("deployer", f"{deployers.describe(who)} is permitted ({entry!r}).")
    return fail(
        "deployer",
        f"{deployers.describe(who)} is not among the deployers of {env.name}: "
        f"{', '.join(env.deployers)}.",
        "Ask a listed deployer, or add the identity to the environment's 'deployers'.",
    )
