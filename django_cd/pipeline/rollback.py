"""``rollback``: back to the previous (or a named) release in seconds.

switch, reload, check. When the releases differ in migrations, the database
goes back first: migrated back with the newer code when every migration on
the way is reversible, or restored from the recorded backup with
``--with-db``; otherwise the rollback is refused, naming the blocking migration.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from typing import Any

from django_cd import conf
from django_cd.pipeline import history, migrations, smoke
from django_cd.pipeline.errors import PipelineError, StepFailed
from django_cd.pipeline.host import Host
from django_cd.pipeline.interrupt import terminate_as_interrupt
from django_cd.pipeline.lock import Lock
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
        on_step: Callable[[StepResult], None] | None = None,
        host: Host | None = None,
    ) -> None:
        self.target = Target(env, host) if host else Target(env)
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.to = to
        self.with_db = with_db
        self.break_lock = break_lock
        self.on_step = on_step
        self.outcome = Outcome(action="rollback", env=env.name, url=self.target.url)

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
            return current, self.to
        older = [
            i for i in ids
            if i < current and self.layout.read_manifest(self.host, i).get("status") == "deployed"
        ]  # fmt: skip
        if not older:
            raise PipelineError(
                f"There is no earlier deployed release of {self.env.name!r} to roll back to."
            )
        return current, older[-1]

    def run(self) -> Outcome:
        started = time.monotonic()
        outcome = self.outcome
        self.choose()  # refuse before touching anything, not even the lock
        lock = Lock(
            self.host,
            self.layout.lock,
            action="rollback",
            timeout=self.target.lock_timeout,
            break_stale=self.break_lock,
        )
        lock.acquire()
        try:
            with terminate_as_interrupt():
                self.target.record_broken_lock(lock, history.deployer())
                current, target = self.choose()
                outcome.previous, outcome.release = current, target
                outcome.commit = self.layout.read_manifest(self.host, target).get("commit")
                self._run_locked(outcome, current, target)
        finally:
            lock.release()
            outcome.seconds = time.monotonic() - started
        return outcome

    def _run_locked(self, outcome: Outcome, current: str, target: str) -> None:
        runner = StepRunner(outcome.steps, self.on_step, self.target.secrets())
        manifest_now = self.layout.read_manifest(self.host, current)
        manifest_to = self.layout.read_manifest(self.host, target)
        same_schema = manifest_now.get("migrations") == manifest_to.get("migrations")
        switched = False
        try:
            if same_schema and not self.with_db:
                runner.skip("database", "same migrations in both releases")
            else:
                self._database(runner, current, target, manifest_to.get("migrations"))
            switched = True
            runner.run("switch", lambda: self._switch_to(target))
            runner.run("reload", lambda: self.target.server.reload(self.target.release(target)))
            url = self.target.url
            if url:
                runner.run("smoke", lambda: smoke.check_release(self.env, url, target))
        except (StepFailed, KeyboardInterrupt) as error:
            if isinstance(error, StepFailed):
                outcome.failed_step, outcome.error, outcome.error_output = (
                    error.step, str(error), error.output,
                )  # fmt: skip
            else:
                outcome.error = "Interrupted (Ctrl-C or SIGTERM)."
            if switched:
                self._switch_back(outcome, runner, current)
            outcome.warnings += filter(None, [self.target.record(self._entry(outcome))])
            if isinstance(error, KeyboardInterrupt):
                raise
            return
        outcome.status = "success"
        self._mark(current, "rolled_back")
        self._mark(target, "deployed")
        outcome.warnings += filter(None, [self.target.record(self._entry(outcome))])

    def _database(
        self, runner: StepRunner, current: str, target: str, state: dict[str, Any] | None
    ) -> None:
        if self.with_db:
            # No question asked of the database: it may be the thing that is broken.
            backup = self._backup_for(target)
            runner.run(
                "database",
                lambda: self.target.restore(self.target.release(target), backup, "database"),
            )
            return
        if state is None:
            raise StepFailed(
                "plan",
                f"Release {target} has no recorded migration state, so the way back is "
                "unknown. Run again with --with-db to restore its backup, or migrate by hand.",
            )
        newer = self.target.release(current)
        report = runner.run_value(
            "plan",
            lambda: migrations.probe(newer, state),
            lambda r: f"{len(r.backward)} migration(s) to unapply",
        )
        blocked = report.irreversible
        if blocked:
            raise StepFailed(
                "plan",
                f"Rolling back to {target} needs to unapply {'; '.join(blocked)}. Run again with "
                f"--with-db to restore the backup recorded for {target}, or pick a later release "
                "with --to.",
            )
        runner.run("database", lambda: self._migrate_back(current, target, state))

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

    def _switch_to(self, release_id: str) -> str:
        self.host.switch_link(self.layout.current, posixpath.join("releases", release_id))
        return f"current -> releases/{release_id}"

    def _switch_back(self, outcome: Outcome, runner: StepRunner, current: str) -> None:
        undo = StepRunner(outcome.rollback_steps, self.on_step, runner.secrets)
        try:
            undo.run("switch", lambda: self._switch_to(current))
            undo.run("reload", lambda: self.target.server.reload(self.target.release(current)))
        except StepFailed as error:
            outcome.warnings.append(f"Switching back to {current} failed: {error}")

    def _mark(self, release_id: str, status: str) -> None:
        manifest = self.layout.read_manifest(self.host, release_id)
        if "commit" in manifest:
            manifest["status"] = status
            self.layout.write_manifest(self.host, manifest)

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
        }
