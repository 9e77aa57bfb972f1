"""``rollback``: back to the previous (or a named) release in seconds.

switch, reload, check. When the releases differ in migrations, the database
is migrated back with the newer code when every migration on the way is
reversible (or restored from the recorded backup with ``--with-db``;
otherwise the rollback is refused, naming the blocking migration). The code
that serves always matches the schema: when the migrations to undo only add
(tables, nullable columns, indexes), the old release serves first and the
database goes back after the switch; otherwise the database goes first and
the plan step says what fails until the switch (``rollback_order``).
"""

from __future__ import annotations

import contextlib
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django_cd import conf
from django_cd.flags import releases as flag_releases
from django_cd.monitoring import announce  # issue 12: notifications, Sentry, StatsD
from django_cd.pipeline import history, journal, migrations, processes, rollback_order
from django_cd.pipeline.agent import agents
from django_cd.pipeline.deploy import _failure
from django_cd.pipeline.errors import PipelineError, StepFailed, describe_os_error
from django_cd.pipeline.fleet import Member, close, each, fleet_targets
from django_cd.pipeline.host import Host
from django_cd.pipeline.interrupt import terminate_as_interrupt
from django_cd.pipeline.journal import Journal
from django_cd.pipeline.release import Release
from django_cd.pipeline.rollback_order import RollbackOrder
from django_cd.pipeline.steps import Outcome, StepResult, StepRunner
from django_cd.pipeline.target import Target


class Rollback:
    """One rollback of ``env``; ``run()`` does it."""

    def __init__(
        self,
        env: conf.Environment,
        *,
        to: str | None = None,
        with_db: bool = False,
        break_lock: bool = False,
        restore_flags: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        host: Host | None = None,
        targets: list[Target] | None = None,
    ) -> None:
        if targets is None:
            targets = [Target(env, host)] if host else fleet_targets(env)
        #: One per host; the first holds the lock and the history and migrates.
        self.members = [Member(target) for target in targets]
        self.target = targets[0]
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.to = to
        self.with_db = with_db
        self.break_lock = break_lock
        self.restore_flags = restore_flags
        self.on_step = on_step
        self.outcome = Outcome(action="rollback", env=env.name, url=self.target.url)
        #: The release that mirrors the history entry, when not the serving one.
        self._mirror_with: Release | None = None
        #: What ``choose`` noticed on the way (a skipped release), shown as warnings.
        self.notes: list[str] = []
        #: The backup the operator agreed to lose writes for (``data_loss()``).
        self.confirmed_backup: str | None = None

    def data_loss(self) -> DataLoss:
        """What ``--with-db`` would lose: asked before ``run()``, outside the lock."""
        _, target = self.choose()
        backup = self._backup_for(target)
        taken = datetime.fromtimestamp(self.host.modified_at(backup), UTC)
        since = [
            event
            for event in history.read(self.host, self.layout)
            if _parse_time(event.get("at")) > taken
        ]
        self.confirmed_backup = backup
        return DataLoss(target, backup, taken, datetime.now(UTC) - taken, len(since))

    def choose(self) -> tuple[str, str]:
        """(current release, release to go back to), or a ``PipelineError`` saying why not."""
        current = self.layout.current_release(self.host)
        if current is None:
            raise PipelineError(
                f"Nothing is deployed to {self.env.name!r} yet: nothing to roll back."
            )
        ids = self.layout.release_ids(self.host)
        if self.to is not None:
            if self.to not in ids:
                raise PipelineError(
                    f"Release {self.to!r} is not on the host. Known releases: "
                    f"{', '.join(ids)} (see manage.py releases --env={self.env.name})."
                )
            if self.to == current:
                raise PipelineError(f"Release {self.to} is already current.")
            problem = self.layout.read_manifest(self.host, self.to).get("problem")
            if problem:
                raise PipelineError(f"Release {self.to} cannot be rolled back to: {problem}")
            return current, self.to
        manifests = {i: self.layout.read_manifest(self.host, i) for i in ids if i < current}
        older = [i for i, m in manifests.items() if m.get("status") == "deployed"]
        if not older:
            unreadable = [m["problem"] for m in manifests.values() if m.get("problem")]
            raise PipelineError(
                f"There is no earlier deployed release of {self.env.name!r} to roll back to."
                + "".join(f" {problem}" for problem in unreadable)
            )
        preceding = self.layout.read_manifest(self.host, current).get("previous")
        if preceding and preceding != older[-1] and preceding not in ids:
            self.notes = [
                f"Release {preceding}, which {current} replaced, is no longer on the host; "
                f"rolling back to {older[-1]}, the newest earlier release that is."
            ]
        return current, older[-1]

    def run(self) -> Outcome:
        started = time.monotonic()
        outcome = self.outcome
        try:
            self.choose()  # refuse before touching anything, not even the lock
            lock = self.target.take_lock("rollback", self.break_lock)
            if lock.expired:
                outcome.warnings.append(f"Took over an expired lock: {lock.expired}.")
            try:
                with terminate_as_interrupt(), contextlib.ExitStack() as stack:
                    for member in self.members:
                        stack.enter_context(agents(member.host))
                    for member in self.members:
                        leftover = journal.leftover(member.target, history.deployer())
                        if leftover is not None:
                            on = f" on {member.host.name}" if len(self.members) > 1 else ""
                            raise PipelineError(
                                f"An earlier {leftover.describe()}{on}. Nothing was changed. "
                                f"Run manage.py status --env={self.env.name} to see how far "
                                f"it got, then manage.py repair --env={self.env.name}."
                            )
                    current, target = self.choose()
                    self._check_fleet(target)
                    outcome.warnings += self.notes
                    outcome.previous, outcome.release = current, target
                    outcome.commit = self.layout.read_manifest(self.host, target).get("commit")
                    self._run_locked(outcome, current, target)
            finally:
                lock.release()
                outcome.seconds = time.monotonic() - started
            outcome.warnings += announce(self.target, outcome)  # issue 12: never raises
        finally:
            close([member.target for member in self.members])
        return outcome

    def _check_fleet(self, release_id: str) -> None:
        """All or nothing: every host must hold ``release_id`` before any switches."""
        if len(self.members) == 1:
            return
        missing: list[str] = []

        def look(member: Member) -> None:
            member.previous = member.layout.current_release(member.host)
            if not member.host.exists(member.layout.release(release_id)):
                missing.append(member.host.name)

        each(self.members, look)
        if missing:
            raise PipelineError(
                f"Release {release_id} is not on {', '.join(sorted(missing))}, so the fleet "
                "cannot go back to it as one; nothing was changed. Pick a release every "
                f"host holds with --to (manage.py releases --env={self.env.name})."
            )
        self.outcome.hosts = [member.host.name for member in self.members]

    def _run_locked(self, outcome: Outcome, current: str, target: str) -> None:
        fleet = len(self.members) > 1
        secrets = [value for member in self.members for value in member.target.secrets()]
        runner = StepRunner(outcome.steps, self.on_step, secrets, where=self.layout.root)
        for member in self.members:
            member.label = member.host.name if fleet else ""
            member.runner = runner.on(member.label, member.layout.root)
            if member.previous is None:
                member.previous = current if member is self.members[0] else None
        # The plan, the database and the flags are the migration host's, as in a deploy.
        runner.host = self.members[0].label
        switched = False
        opened: Journal | None = None
        journals: list[Journal] = []
        try:
            manifest_now = self.layout.read_manifest(self.host, current)
            manifest_to = self.layout.read_manifest(self.host, target)
            for member in self.members:
                journals.append(
                    Journal.begin(
                        member.host,
                        member.layout,
                        action="rollback",
                        release=target,
                        previous=member.previous or current,
                        commit=outcome.commit,
                        migrations_before=manifest_now.get("migrations"),
                        backup=None,
                    )
                )
                member.steps.on_start = journals[-1].intend
            opened = journals[0]
            runner.on_start = opened.intend
            same_schema = manifest_now.get("migrations") == manifest_to.get("migrations")
            if same_schema and manifest_now.get("migrations") is not None:
                # Either release's code fits the database: the newer one, whose
                # Django already runs (it answered the plan), mirrors the history.
                self._mirror_with = self.target.release(current)
            after_switch = self._database(
                runner, current, target, manifest_to.get("migrations"), same_schema
            )
            switched = True
            each(self.members, lambda member: self._switch_host(member, target))
            if after_switch is not None:
                # Only additions to undo: the old code already serves on the newer schema.
                runner.run("database", after_switch)
            if self.restore_flags:
                runner.run("flags", lambda: self._restore_flags(target, manifest_to))
            each(self.members, lambda member: self._smoke(member, target))
        except (Exception, KeyboardInterrupt) as error:
            hosts = [m.runner for m in self.members if m.runner is not None]
            outcome.failed_step, outcome.error, outcome.error_output = _failure(
                error, runner, *hosts
            )
            complete = not switched or self._switch_back(outcome, runner, current)
            self._record(outcome)
            touched = runner.running == "database" or self._touched(outcome)
            for each_journal in journals:
                if complete and not touched:
                    each_journal.close()
                else:
                    each_journal.leave(undo_failed=not complete)
            if isinstance(error, KeyboardInterrupt):
                raise
            return
        outcome.status = "success"
        for member in self.members:
            try:
                self._mark(member, current, "rolled_back")
                self._mark(member, target, "deployed")
            except OSError as error:
                outcome.warnings.append(describe_os_error(error, member.layout.releases))
        self._record(outcome)
        for each_journal in journals:
            each_journal.close()

    def _switch_host(self, member: Member, release_id: str) -> None:
        target, steps = member.target, member.steps
        release = target.release(release_id)
        # The old code runs with today's shared/.env (rotated secrets, new options).
        release.snapshot_env_file()
        member.switched = True
        steps.run("switch", lambda: self._switch_to(member, release_id))
        steps.run("reload", lambda: target.server.reload(release))
        processes.restart_step(steps, target, release, quiet=True)

    @staticmethod
    def _smoke(member: Member, release_id: str) -> None:
        url = member.target.url
        if url:
            member.steps.run("smoke", lambda: member.target.check_serving(url, release_id))

    @staticmethod
    def _touched(outcome: Outcome) -> bool:
        """Whether the failed rollback changed the database (repair must look at it)."""
        return any(s.name == "database" and s.status != "skipped" for s in outcome.steps)

    def _record(self, outcome: Outcome) -> None:
        """History on every host; the database mirrors it once, from the first."""
        entry = self._entry(outcome)
        for member in self.members:
            try:
                if member is self.members[0]:
                    mirror = member.target.record(entry, self._mirror_with)
                    outcome.warnings += filter(None, [mirror])
                else:
                    history.append(member.host, member.layout, entry)
            except OSError as error:
                outcome.warnings.append(describe_os_error(error, member.layout.history))

    def _database(
        self,
        runner: StepRunner,
        current: str,
        target: str,
        state: dict[str, Any] | None,
        same_schema: bool,
    ) -> Callable[[], str] | None:
        """Run the database step now, or return it to run after the switch."""
        if self.with_db:
            # No question asked of the database: it may be the thing that is broken.
            backup = self._backup_for(target)
            if self.confirmed_backup is not None and backup != self.confirmed_backup:
                raise StepFailed(
                    "plan",
                    f"The backup to restore is now {backup}, not the "
                    f"{self.confirmed_backup} you confirmed: run the rollback again.",
                )
            runner.run(
                "database",
                lambda: self.target.restore(self.target.release(target), backup, "database"),
            )
            return None
        newer = self.target.release(current)

        def plan() -> tuple[migrations.MigrationReport, RollbackOrder | None]:
            report = migrations.probe(newer, state)
            if not report.matches:
                raise StepFailed("plan", self._mismatch(current, report))
            if same_schema or state is None or report.irreversible:
                return report, None
            return report, rollback_order.classify(newer, state)

        report, order = runner.run_value(
            "plan",
            plan,
            lambda r: (
                f"database matches {current}; {len(r[0].backward)} migration(s) to unapply"
                + (f"; {r[1].describe()}" if r[1] and r[1].code_first and r[1].backward else "")
            ),
        )
        if same_schema:
            runner.skip("database", "same migrations in both releases")
            return None
        if state is None:
            raise StepFailed(
                "plan",
                f"Release {target} has no recorded migration state, so the way back is "
                "unknown. Run again with --with-db to restore its backup, or migrate by hand.",
            )
        blocked = report.irreversible
        if blocked or order is None:
            raise StepFailed(
                "plan",
                f"Rolling back to {target} needs to unapply {'; '.join(blocked)}. Run again with "
                f"--with-db to restore the backup recorded for {target}, or pick a later release "
                "with --to.",
            )
        if order.code_first:
            return lambda: self._migrate_back(current, target, state)
        self.outcome.warnings += filter(None, [order.warning()])
        runner.run("database", lambda: self._migrate_back(current, target, state))
        return None

    def _mismatch(self, current: str, report: migrations.MigrationReport) -> str:
        found = [
            part
            for part in (
                report.pending and f"not applied: {', '.join(report.pending)}",
                report.unknown and f"unknown: {', '.join(report.unknown)}",
            )
            if part
        ]
        return (
            f"The database does not match release {current}, which is current: "
            f"{'; '.join(found)}. Run manage.py status --env={self.env.name}, then "
            f"manage.py repair --env={self.env.name}."
        )

    def _migrate_back(self, current: str, target: str, state: dict[str, str | None]) -> str:
        migrations.migrate_to(self.target.release(current), state, step="database")
        # Anything the target has that the current release never applied.
        result = self.target.release(target).manage("migrate", "--noinput")
        if not result.ok:
            raise StepFailed("database", "migrate with the target release failed.", result.output)
        return f"database at the state of {target}"

    def _backup_for(self, target: str) -> str:
        for release_id in reversed(self.layout.release_ids(self.host)):
            backup = self.layout.read_manifest(self.host, release_id).get("backup") or {}
            if backup.get("state_of") == target and self.host.exists(str(backup.get("path"))):
                return str(backup["path"])
        raise StepFailed(
            "plan",
            f"No backup of the database of release {target} is recorded on the host, so "
            "--with-db cannot restore it. Roll back to a release with a backup, "
            "or restore by hand.",
        )

    def _restore_flags(self, target: str, manifest: dict[str, Any]) -> str:
        snapshot = manifest.get("flags")
        if not snapshot:
            raise StepFailed("flags", f"Release {target} recorded no flag states.", "")
        try:
            lines = flag_releases.restore(
                self.target.release(target),
                snapshot,
                by=history.deployer()["user"],
                reason=f"rollback to {target}",
            )
        except ValueError as error:
            raise StepFailed("flags", "Restoring the flag states failed.", str(error)) from None
        return "; ".join(lines) or "flag states already as recorded"

    @staticmethod
    def _switch_to(member: Member, release_id: str) -> str:
        member.host.switch_link(member.layout.current, posixpath.join("releases", release_id))
        return f"current -> releases/{release_id}"

    def _switch_back(self, outcome: Outcome, runner: StepRunner, current: str) -> bool:
        """Every host that was switched back onto what it served before."""
        undo = StepRunner(outcome.rollback_steps, self.on_step, runner.secrets)
        failed: list[str] = []

        def back(member: Member) -> None:
            steps = undo.on(member.label, member.layout.root)
            previous = member.target.release(member.previous or current)
            try:
                steps.run("switch", lambda: self._switch_to(member, previous.id))
                steps.run("reload", lambda: member.target.server.reload(previous))
                processes.restart_step(steps, member.target, previous, quiet=True)
            except StepFailed as error:
                failed.append(
                    f"Switching {member.label or 'back'} to {previous.id} failed: {error}"
                )

        each([m for m in self.members if m.switched], back)
        outcome.warnings += failed
        return not failed

    @staticmethod
    def _mark(member: Member, release_id: str, status: str) -> None:
        manifest = member.layout.read_manifest(member.host, release_id)
        if "commit" in manifest:
            manifest["status"] = status
            member.layout.write_manifest(member.host, manifest)

    def _entry(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "event": "rollback",
            "env": self.env.name,
            "status": outcome.status,
            "release": outcome.release,
            "commit": outcome.commit,
            "previous": outcome.previous,
            "with_db": self.with_db,
            "at": history.now(),
            "by": history.deployer(),
            "failed_step": outcome.failed_step,
            "error": outcome.error,
            "steps": [step.as_dict() for step in outcome.steps],
            "rollback_steps": [step.as_dict() for step in outcome.rollback_steps],
            **({"hosts": outcome.hosts} if outcome.hosts else {}),
        }


@dataclass(frozen=True)
class DataLoss:
    """What restoring ``backup`` throws away: every write since it was taken."""

    release: str
    backup: str
    taken: datetime
    age: timedelta
    events_since: int

    def describe(self) -> str:
        when = self.taken.strftime("%Y-%m-%d %H:%M:%S UTC")
        lines = [
            f"rollback --with-db restores the database from {self.backup},",
            f"taken {when} ({_age(self.age)} ago), to go back to release {self.release}.",
            "Every write to the database since then is lost: what users stored, "
            "changed or deleted",
            f"since {when}, and {self.events_since} deploy/rollback event(s) "
            "recorded in history since.",
        ]
        return "\n".join(lines)


def _age(age: timedelta) -> str:
    seconds = max(int(age.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds % 60} s" if minutes else f"{seconds} s"


def _parse_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
