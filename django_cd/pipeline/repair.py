"""``repair``: put an environment right after a command died or the database drifted.

What it repairs, found by ``pipeline.journal`` and ``pipeline.consistency``:

- a deploy or rollback that died (``kill -9``, a lost machine) part-way: by
  default undone, back to the release that was current when it started
  (``forward=True`` finishes it instead, to the release it was making);
- with no journal, a database that does not match the current release (a
  ``migrate`` by hand): brought to what the current release expects.

In every case: the database is migrated to the goal release's state (with the
code that knows the migrations to unapply; from the dead deploy's backup when
they cannot be unapplied), ``current`` points at the goal, the app server
reloads it, the goal answers, the database is checked again, and history
records the repair.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django_cd import conf
from django_cd.pipeline import consistency, history, journal, migrations, processes
from django_cd.pipeline.agent import agents
from django_cd.pipeline.deploy import _failure
from django_cd.pipeline.errors import PipelineError, StepFailed
from django_cd.pipeline.fleet import close, each, fleet_targets
from django_cd.pipeline.host import Host
from django_cd.pipeline.interrupt import terminate_as_interrupt
from django_cd.pipeline.journal import Interrupted, Journal
from django_cd.pipeline.release import Release
from django_cd.pipeline.steps import Outcome, StepResult, StepRunner
from django_cd.pipeline.target import Target


@dataclass(frozen=True)
class RepairPlan:
    """Where the repair takes the environment, and with what."""

    #: The release that will serve (None: the dead command was the first deploy).
    goal: str | None
    #: The release whose code knows every applied migration (unapplies what ``goal``
    #: does not know); None when ``goal``'s own code is enough.
    knower: str | None
    #: The migration state to reach with ``knower`` (None: ``goal``'s latest).
    state: dict[str, str | None] | None
    #: A backup holding ``goal``'s database, for migrations that cannot be unapplied.
    backup: str | None
    #: The half-made release to remove once the goal serves.
    discard: str | None
    direction: str
    why: str


@dataclass
class Follower:
    """One host's part of a repair: its target, the journal a dead command left there
    (kept open, so a repair that dies too is found), and its steps."""

    target: Target
    dead: Interrupted | None
    journal: Journal | None = None
    runner: StepRunner | None = None

    @property
    def steps(self) -> StepRunner:
        assert self.runner is not None
        return self.runner

    def open(self, plan: RepairPlan, runner: StepRunner) -> None:
        host, layout = self.target.host, self.target.layout
        if self.dead is not None:
            self.journal = Journal(host, layout)
            self.journal.data = dict(self.dead.data)
        else:
            self.journal = Journal.begin(host, layout, action="repair", release=plan.goal)
        self.journal.note(repairing=plan.direction, pid=os.getpid(), host=socket.gethostname())
        runner.on_start = self.journal.intend
        self.runner = runner

    def discard(self, plan: RepairPlan) -> str | None:
        """The half-made release the dead deploy left on this host, once undone."""
        if plan.direction == "forward" or self.dead is None or self.dead.action != "deploy":
            return None
        return self.dead.release

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


class Repair:
    """One repair of ``env``; ``plan()`` tells, ``run()`` does it.

    On a fleet the migration host's journal and database decide the goal; every
    other host is then brought to that release too (switched, reloaded, answering),
    so the fleet ends on one release whatever the dead command had switched.
    """

    def __init__(
        self,
        env: conf.Environment,
        *,
        forward: bool = False,
        break_lock: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        host: Host | None = None,
        targets: list[Target] | None = None,
    ) -> None:
        if targets is None:
            targets = [Target(env, host)] if host else fleet_targets(env)
        #: The first holds the lock, the history and the database; the others follow.
        self.targets = targets
        self.target = targets[0]
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.forward = forward
        self.break_lock = break_lock
        self.on_step = on_step
        self.outcome = Outcome(action="repair", env=env.name, url=self.target.url)
        if len(targets) > 1:
            self.outcome.hosts = [target.host.name for target in targets]

    def run(self) -> Outcome:
        started = time.monotonic()
        try:
            each(self.targets, lambda target: target.host.connect())
            lock = self.target.take_lock("repair", self._may_break_lock())
            try:
                with terminate_as_interrupt(), contextlib.ExitStack() as stack:
                    for target in self.targets:
                        stack.enter_context(agents(target.host))
                    self._run_unlocked()
            finally:
                lock.release()
                self.outcome.seconds = time.monotonic() - started
        finally:
            close(self.targets)
        return self.outcome

    def _run_unlocked(self) -> None:
        data = journal.read(self.host, self.layout)
        dead = Interrupted(data) if data is not None else None
        plan = self.plan(dead)
        followers = self._followers(plan)
        if plan is None and not followers:
            self.outcome.status = "success"
            self.outcome.release = self.layout.current_release(self.host)
            self.outcome.warnings.append(
                "Nothing to repair: no command died part-way, and the database "
                f"matches {self.outcome.release or 'the (empty) deployment'}."
            )
            who = history.deployer()
            for target in self.targets:
                left = journal.interrupted(target.host, target.layout)
                if left is not None:  # a dead command that had changed nothing there
                    journal.clean_up(target, left, who)
            return
        if plan is None:  # the database is right; only other hosts are not
            current = self.layout.current_release(self.host)
            plan = RepairPlan(
                current, None, None, None, None, "hosts", "hosts not on the fleet's release"
            )
        self._run_locked(plan, dead, followers)

    def _may_break_lock(self) -> bool:
        """A stale lock left by the dead command the journal names is ours to break."""
        if self.break_lock:
            return True
        data = journal.read(self.host, self.layout)
        holder = self.target.lock().holder()
        if data is None or holder is None:
            return False
        info, stale = holder
        return stale is not None and info is not None and info.pid == data.get("pid")

    # Plan -----------------------------------------------------------------

    def plan(self, dead: Interrupted | None) -> RepairPlan | None:
        """What to do; None when there is nothing to repair."""
        current = self.layout.current_release(self.host)
        if dead is None or not journal.needs_repair(dead):
            if dead is None and self.forward:
                raise PipelineError("--forward finishes a deploy that died; none did.")
            return self._plan_drift(current)
        if dead.action == "deploy":
            return self._plan_deploy(dead)
        if dead.action == "rollback":
            return self._plan_rollback(dead)
        # A repair (or an unreadable journal) that died: redo it from what is there.
        goal = dead.release or current
        return RepairPlan(goal, None, None, None, None, "again", "the previous repair died")

    def _plan_drift(self, current: str | None) -> RepairPlan | None:
        check = consistency.check(self.target)
        if check.matches is None:
            raise PipelineError(
                f"Cannot tell whether the database matches {current}: {check.error}"
            )
        if check.matches:
            return None
        assert current is not None
        knower = self._knower(check.unknown) if check.unknown else None
        expected = self.layout.read_manifest(self.host, current).get("migrations")
        return RepairPlan(
            current,
            knower,
            expected if isinstance(expected, dict) else None,
            None,
            None,
            "database",
            check.problem(self.env.name) or "",
        )

    def _plan_deploy(self, dead: Interrupted) -> RepairPlan:
        made, before = dead.release, dead.previous
        made_exists = bool(made) and self.host.exists(self.layout.release(str(made)))
        if self.forward:
            if not made_exists:
                raise PipelineError(
                    f"The release {made} the dead deploy was making is gone; it cannot be "
                    "finished. Run repair without --forward to undo it."
                )
            return RepairPlan(made, None, None, None, None, "forward", dead.describe())
        return RepairPlan(
            before,
            made if made_exists else None,
            dead.data.get("migrations_before"),
            dead.data.get("backup"),
            made,
            "back",
            dead.describe(),
        )

    def _plan_rollback(self, dead: Interrupted) -> RepairPlan:
        was, going = dead.previous, dead.release
        if self.forward:
            state = self.layout.read_manifest(self.host, str(going)).get("migrations")
            return RepairPlan(going, was, state, None, None, "forward", dead.describe())
        return RepairPlan(was, None, None, None, None, "back", dead.describe())

    def _knower(self, unknown: list[str]) -> str:
        """The newest release on the host whose code knows ``unknown`` migrations."""
        for release_id in reversed(self.layout.release_ids(self.host)):
            try:
                report = migrations.probe(self.target.release(release_id), step="database")
            except StepFailed:
                continue
            if not report.unknown:
                return release_id
        raise PipelineError(
            f"No release on the host knows the applied migrations {', '.join(unknown)}; "
            "deploy the code that has them, or unapply them by hand."
        )

    # Run ------------------------------------------------------------------

    def _followers(self, plan: RepairPlan | None) -> list[Follower]:
        """The other hosts of a fleet that a dead command left a journal on, or that do
        not serve the goal; each must hold the goal release (all or nothing)."""
        goal = plan.goal if plan is not None else self.layout.current_release(self.host)
        found = []
        for target in self.targets[1:]:
            dead = journal.interrupted(target.host, target.layout)
            if dead is None and target.layout.current_release(target.host) == goal:
                continue
            if goal is not None and not target.host.exists(target.layout.release(goal)):
                raise PipelineError(
                    f"{target.host.name} does not hold {goal}, the release the repair would "
                    f"bring the fleet to; nothing was changed. Deploy to {self.env.name} "
                    "once the fleet is repaired by hand, or restore that release there."
                )
            found.append(Follower(target, dead))
        return found

    def _run_locked(
        self, plan: RepairPlan, dead: Interrupted | None, followers: list[Follower]
    ) -> None:
        outcome = self.outcome
        outcome.release, outcome.previous = plan.goal, self.layout.current_release(self.host)
        secrets = [value for target in self.targets for value in target.secrets()]
        runner = StepRunner(outcome.steps, self.on_step, secrets, where=self.layout.root)
        hosts = [Follower(self.target, dead), *followers]
        fleet = len(self.targets) > 1
        for host in hosts:
            host.open(plan, runner.on(host.target.host.name, host.target.layout.root)
                      if fleet else runner)  # fmt: skip
        primary = hosts[0]
        try:
            primary.steps.run("database", lambda: self._database(plan))
            each(hosts, lambda host: self._serve(host, plan.goal))
            primary.steps.run("verify", lambda: self._verify(plan))
        except (Exception, KeyboardInterrupt) as error:
            outcome.failed_step, outcome.error, outcome.error_output = _failure(error, runner)
            for host in hosts:
                history.append(host.target.host, host.target.layout, self._entry(plan, dead))
            if isinstance(error, KeyboardInterrupt):
                raise
            return
        outcome.status = "success"
        for host in hosts:
            discard = plan.discard if host is primary else host.discard(plan)
            if discard and discard != plan.goal:
                host.target.host.remove(host.target.layout.release(discard))
        outcome.warnings += filter(None, [self.target.record(self._entry(plan, dead))])
        for host in followers:
            history.append(host.target.host, host.target.layout, self._entry(plan, dead))
        for host in hosts:
            host.close()

    def _serve(self, host: Follower, goal: str | None) -> None:
        """``goal`` current on one host, reloaded, its role processes and its answer."""
        target, steps = host.target, host.steps
        steps.run("switch", lambda: self._switch(target, goal))
        steps.run("reload", lambda: self._reload(target, goal))
        goal_release = target.release(goal) if goal else None
        processes.restart_step(steps, target, goal_release, quiet=True)  # issue 14 §7
        url = target.url
        if url and goal:
            steps.run("smoke", lambda: target.check_serving(url, goal))

    def _release(self, release_id: str) -> Release:
        return self.target.release(release_id)

    def _database(self, plan: RepairPlan) -> str:
        done = []
        if plan.knower is not None:
            state = plan.state
            if state is None and plan.goal is not None:
                state = dict(migrations.probe(self._release(plan.goal), step="database").leaves)
            try:
                migrations.migrate_to(self._release(plan.knower), state or {}, step="database")
                done.append(f"unapplied with {plan.knower}'s code")
            except StepFailed:
                if not plan.backup or not self.host.exists(plan.backup):
                    raise
                self.target.restore(
                    self._release(plan.goal or plan.knower), plan.backup, "database"
                )
                done.append(f"restored {posixpath.basename(plan.backup)}")
        elif plan.state is not None and plan.backup and plan.goal is not None:
            # The dead deploy's release is gone: only its backup can take the schema back.
            self.target.restore(self._release(plan.goal), plan.backup, "database")
            done.append(f"restored {posixpath.basename(plan.backup)}")
        if plan.goal is not None:
            result = self._release(plan.goal).manage("migrate", "--noinput")
            if not result.ok:
                raise StepFailed("database", f"migrate with {plan.goal} failed.", result.output)
            done.append(f"migrated with {plan.goal}")
        return "; ".join(done) or "nothing to change"

    @staticmethod
    def _switch(target: Target, goal: str | None) -> str:
        host, layout = target.host, target.layout
        if goal is None:
            host.remove(layout.current)
            return "removed current (the dead deploy was the first)"
        if layout.current_release(host) == goal:
            return f"current is {goal} already"
        host.switch_link(layout.current, posixpath.join("releases", goal))
        return f"current -> releases/{goal}"

    @staticmethod
    def _reload(target: Target, goal: str | None) -> str:
        if goal is None:
            return target.server.stop()
        return target.server.reload(target.release(goal))

    def _verify(self, plan: RepairPlan) -> str:
        if plan.goal is None:
            return "nothing deployed; database back to its state before the first deploy"
        report = migrations.probe(self._release(plan.goal), step="verify")
        if not report.matches:
            problem = consistency.DatabaseCheck(
                plan.goal, False, report.pending, report.unknown
            ).problem(self.env.name)
            raise StepFailed("verify", f"Still not consistent: {problem}")
        manifest = self.layout.read_manifest(self.host, plan.goal)
        if "commit" in manifest:
            manifest.update(status="deployed", migrations=report.state)
            self.layout.write_manifest(self.host, manifest)
        return f"database matches {plan.goal}"

    def _entry(self, plan: RepairPlan, dead: Interrupted | None) -> dict[str, Any]:
        outcome = self.outcome
        return {
            "event": "repair",
            "env": self.env.name,
            "status": outcome.status,
            "release": plan.goal,
            "previous": outcome.previous,
            "direction": plan.direction,
            "why": plan.why,
            "interrupted": dead.as_dict() if dead is not None else None,
            "at": history.now(),
            "by": history.deployer(),
            "failed_step": outcome.failed_step,
            "error": outcome.error,
            "steps": [step.as_dict() for step in outcome.steps],
        }
