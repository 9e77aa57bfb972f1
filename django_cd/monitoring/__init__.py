"""After a deploy or rollback: notifications, Sentry, StatsD.

``announce`` is the engine's one call: each configured notifier runs on its own,
and whatever goes wrong with one (a dead SMTP server, a webhook answering 500,
Sentry unreachable) becomes a warning on the outcome. It never fails a deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django_cd import conf
from django_cd.monitoring import config, metrics, notify, sentry_api
from django_cd.monitoring.event import DeployEvent
from django_cd.pipeline import history
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.steps import Outcome
from django_cd.pipeline.target import Target, base_dir

__all__ = ["DeployEvent", "announce", "event_for"]


def announce(target: Target, outcome: Outcome) -> list[str]:
    """Send ``outcome`` everywhere configured; the warnings of those that failed."""
    settings = conf.get_config()
    sentry, statsd = config.sentry(settings), config.statsd(settings)
    if not (target.env.notifications or sentry or statsd):
        return []
    try:
        event = event_for(target, outcome)
    except Exception as error:  # the facts are best effort; the message still goes
        event = DeployEvent(outcome, by=history.deployer()["user"])
        failures = [f"Notification details incomplete: {type(error).__name__}: {error}"]
    else:
        failures = []
    for entry in target.env.notifications:
        failures += _attempt(f"Notification ({entry['type']})", partial(notify.send, entry, event))
    if sentry:
        failures += _attempt("Sentry", lambda: "; ".join(sentry_api.report(sentry, event)))
    if statsd:
        failures += _attempt("StatsD", lambda: metrics.send(statsd, outcome))
    return failures


def _attempt(what: str, action: Callable[[], object]) -> list[str]:
    try:
        action()
    except Exception as error:  # reported, never raised: the deploy's result stands
        return [f"{what} failed: {error}"]
    return []


def event_for(target: Target, outcome: Outcome) -> DeployEvent:
    """The facts of ``outcome``: who, and the commits since the previous release."""
    repository = Repository.find(conf.get_config()["REPOSITORY"], base_dir())
    who = history.describe_deployer(history.deployer(repository.identity()))
    previous = (
        target.layout.read_manifest(target.host, outcome.previous).get("commit")
        if outcome.previous
        else None
    )
    commits: list[tuple[str, str]] = []
    if outcome.commit and previous:
        log = repository.git("log", "--format=%H %s", f"{previous}..{outcome.commit}")
        commits = [tuple(line.split(" ", 1)) for line in log.splitlines() if " " in line]  # type: ignore[misc]
    return DeployEvent(outcome, by=who, commits=commits, previous_commit=previous)
