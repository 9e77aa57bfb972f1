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

import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django_cd import conf
from django_cd.pipeline import consistency, history, journal, migrations, processes
from django_cd.pipeline.agent import agents
from django_cd.pipeline.deploy import _failure
from django_cd.pipeline.errors import PipelineError, StepFailed
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


class Repair:
    """One repair of ``env``; ``plan()`` tells, ``run()`` does it."""

    def __init__(
        self,
        env: conf.Environment,
        *,
        forward: bool = False,
        break_lock: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        host: Host | None = None,
    ) -> None:
        self.target = Target(env, host) if host else Target(env)
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.forward = forward
        self.break_lock = break_lock
        self.on_step = on_step
        self.outcome = Outcome(action="repair", env=env.name, url=self.target.url)

    def run(self) -> Outcome:
        started = time.monotonic()
        lock = self.target.take_lock("repair", self._may_break_lock())
        try:
            with terminate_as_interrupt(), agents(self.host):
                data = journal.read(self.host, self.layout)
                dead = Interrupted(data) if data is not None else None
                plan = self.plan(dead)
                if plan is None:
                    self.outcome.status = "success"
                    self.outcome.release = self.layout.current_release(self.host)
                    self.outcome.warnings.append(
                        "Nothing to repair: no command died part-way, and the database "
                        f"matches {self.outcome.release or 'the (empty) deployment'}."
                    )
                    if data is not None:  # a dead command that had changed nothing
                        journal.clean_up(self.target, dead, history.deployer())  # type: ignore[arg-type]
                    return self.outcome
                self._run_locked(plan, dead)
        finally:
            lock.release()
            self.outcome.seconds = time.monotonic() - started
        return self.outcome

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

    def _run_locked(self, plan: RepairPlan, dead: Interrupted | None) -> None:
        outcome = self.outcome
        outcome.release, outcome.previous = plan.goal, self.layout.current_release(self.host)
        runner = StepRunner(
            outcome.steps, self.on_step, self.target.secrets(), where=self.layout.root
        )
        opened = Journal(self.host, self.layout) if dead is not None else None
        if opened is not None:
            assert dead is not None
            opened.data = dict(dead.data)
        try:
            if opened is None:
                opened = Journal.begin(self.host, self.layout, action="repair", release=plan.goal)
            opened.note(repairing=plan.direction, pid=os.getpid(), host=self.host.name)
            runner.on_start = opened.intend
            runner.run("database", lambda: self._database(plan))
            runner.run("switch", lambda: self._switch(plan.goal))
            runner.run("reload", lambda: self._reload(plan.goal))
            goal_release = self._release(plan.goal) if plan.goal else None
            processes.restart_step(runner, self.target, goal_release, quiet=True)  # issue 14 §7
            url = self.target.url
            if url and plan.goal:
                goal = plan.goal
                runner.run("smoke", lambda: self.target.check_serving(url, goal))
            runner.run("verify", lambda: self._verify(plan))
        except (Exception, KeyboardInterrupt) as error:
            outcome.failed_step, outcome.error, outcome.error_output = _failure(error, runner)
            history.append(self.host, self.layout, self._entry(plan, dead))
            if isinstance(error, KeyboardInterrupt):
                raise
            return
        outcome.status = "success"
        if plan.discard and plan.discard != plan.goal:
            self.host.remove(self.layout.release(plan.discard))
        outcome.warnings += filter(None, [self.target.record(self._entry(plan, dead))])
        opened.close()

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

    def _switch(self, goal: str | None) -> str:
        if goal is None:
            self.host.remove(self.layout.current)
            return "removed current (the dead deploy was the first)"
        if self.layout.current_release(self.host) == goal:
            return f"current is {goal} already"
        self.host.switch_link(self.layout.current, posixpath.join("releases", goal))
        return f"current -> releases/{goal}"

    def _reload(self, goal: str | None) -> str:
        if goal is None:
            return self.target.server.stop()
        return self.target.server.reload(self._release(goal))

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
