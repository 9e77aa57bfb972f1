"""``deploy``: a new release, built aside, switched in atomically, checked, or undone.

prepare (no effect on traffic): upload -> venv -> check -> clean_pyc ->
collectstatic -> plan (pending migrations). commit, under the lock: backup
(when migrations are pending, or always) -> migrate. switch: current ->
reload -> smoke. finish: tag, release.json, history, prune.

A failure before the switch removes the half-made release (and migrates the
database back, or restores the backup, when migrate had begun); a failure at
or after the switch switches back, reloads, undoes the migrations, and
checks the previous release answers.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from typing import Any

from django_cd import conf
from django_cd.pipeline import history, migrations, prune, smoke
from django_cd.pipeline.errors import PipelineError, StepFailed
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.host import Host
from django_cd.pipeline.interrupt import terminate_as_interrupt
from django_cd.pipeline.layout import REVISION_FILE, new_release_id
from django_cd.pipeline.lock import Lock
from django_cd.pipeline.release import Release
from django_cd.pipeline.steps import Outcome, StepResult, StepRunner
from django_cd.pipeline.target import Target, base_dir
from django_cd.pipeline.venv import ensure_venv

STEP_NAMES = (
    "upload", "venv", "check", "clean_pyc", "collectstatic", "plan", "backup", "migrate",
    "switch", "reload", "smoke", "finish",
)  # fmt: skip


class Deploy:
    """One deploy of ``ref`` to ``env``; ``run()`` does it, ``plan()`` only tells."""

    def __init__(
        self,
        env: conf.Environment,
        *,
        ref: str = "HEAD",
        allow_dirty: bool = False,
        break_lock: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        host: Host | None = None,
        repository: Repository | None = None,
    ) -> None:
        self.target = Target(env, host) if host else Target(env)
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.ref = ref
        self.allow_dirty = allow_dirty
        self.break_lock = break_lock
        self.on_step = on_step
        self.repo = repository or Repository.find(conf.get_config()["REPOSITORY"], base_dir())
        self.outcome = Outcome(action="deploy", env=env.name, url=self.target.url)

    # Source ---------------------------------------------------------------

    def resolve(self) -> str:
        """The commit to deploy; refuses a dirty checkout unless allowed."""
        commit = self.repo.resolve(self.ref)
        dirty = self.repo.dirty_files()
        if dirty and not self.allow_dirty:
            raise PipelineError(
                f"The checkout {self.repo.path} has uncommitted changes ({', '.join(dirty[:5])}"
                f"{' ...' if len(dirty) > 5 else ''}). Commit or stash them, or pass "
                "--allow-dirty to deploy the commit anyway."
            )
        if dirty and not self.env.allow_dirty:
            raise PipelineError(
                f"Environment {self.env.name!r} refuses --allow-dirty (allow_dirty is False): "
                "deploy from a clean checkout."
            )
        return commit

    # Dry run --------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """What ``run()`` would do; changes nothing on the host."""
        commit = self.resolve()
        current = self.layout.current_release(self.host)
        report: migrations.MigrationReport | None = None
        note = ""
        if current is None:
            note = "first deploy: every migration runs"
        else:
            try:
                report = self._probe_with(current, commit)
            except PipelineError as error:
                note = f"pending migrations unknown: {error}"
        pending = report.pending if report is not None else None
        backup = self.env.backup == "always" or (
            self.env.backup == "auto" and (pending is None or bool(pending))
        )
        return {
            "env": self.env.name,
            "commit": commit,
            "ref": self.ref,
            "subject": self.repo.subject(commit),
            "current": current,
            "steps": [s for s in STEP_NAMES if s != "backup" or backup],
            "backup": backup,
            "migrations": pending,
            "lints": report.lints if report is not None else None,
            "note": note,
            "url": self.target.url,
        }

    def _probe_with(self, current: str, commit: str) -> migrations.MigrationReport:
        # The new code, unpacked outside the root and run with the current
        # release's virtualenv, asks the live database what it would apply.
        scratch = self.host.make_temp_dir()
        try:
            self.host.extract_tar(self.repo.archive(commit), scratch)
            existing = self.target.release(current)
            probe_release = Release(self.env, self.host, self.layout, current, location=scratch)
            venv = self.host.readlink(existing.venv)
            if venv is None:
                raise PipelineError("the current release has no virtualenv")
            venv_path = posixpath.join(self.layout.venvs, posixpath.basename(venv))
            self.host.switch_link(probe_release.venv, venv_path)
            return migrations.probe(probe_release, lint=True)
        finally:
            self.host.remove(scratch)

    # Run ------------------------------------------------------------------

    def run(self) -> Outcome:
        """Deploy; the outcome says ``success``, ``failed`` or ``rolled_back``."""
        started = time.monotonic()
        outcome = self.outcome
        try:
            outcome.commit = self.resolve()
        except PipelineError as error:
            self._refused(outcome, str(error))
            raise
        self.layout.ensure(self.host)
        lock = Lock(
            self.host,
            self.layout.lock,
            action=f"deploy of {outcome.commit[:12]}",
            timeout=self.target.lock_timeout,
            break_stale=self.break_lock,
        )
        lock.acquire()
        try:
            with terminate_as_interrupt():
                self.target.record_broken_lock(lock, history.deployer(self.repo.identity()))
                self._run_locked(outcome)
        finally:
            lock.release()
            outcome.seconds = time.monotonic() - started
        return outcome

    def _refused(self, outcome: Outcome, error: str) -> None:
        outcome.error = error
        outcome.failed_step = "resolve"
        if self.host.exists(self.layout.root):
            history.append(self.host, self.layout, self._entry(outcome, None))

    def _run_locked(self, outcome: Outcome) -> None:
        assert outcome.commit is not None
        runner = StepRunner(outcome.steps, self.on_step, self.target.secrets())
        previous = self.layout.current_release(self.host)
        outcome.previous = previous
        release = self.target.release(
            new_release_id(outcome.commit, self.layout.release_ids(self.host))
        )
        outcome.release = release.id
        state = _DeployState()
        try:
            self._prepare(runner, release, state)
            self._commit(runner, release, state)
            state.switched = True
            self._switch(runner, release)
        except (StepFailed, KeyboardInterrupt) as error:
            self._fail(outcome, runner, release, previous, state, error)
            if isinstance(error, KeyboardInterrupt):
                raise
            return
        outcome.status = "success"
        self._finish(outcome, runner, release, state)

    def _prepare(self, runner: StepRunner, release: Release, state: _DeployState) -> None:
        runner.run("upload", lambda: self._upload(release))
        venv = runner.run_value(
            "venv",
            lambda: ensure_venv(release),
            lambda v: f"{'built' if v.created else 'reused'} venvs/{v.hash}",
        )
        state.venv = venv.hash
        runner.run("check", lambda: _manage_ok(release, "check", ("check", "--deploy")))
        runner.run("clean_pyc", lambda: self._clean_pyc(release))
        runner.run(
            "collectstatic",
            lambda: _manage_ok(release, "collectstatic", ("collectstatic", "--noinput")),
        )

        def plan() -> str:
            state.before = migrations.probe(release)
            pending = state.before.pending
            return f"{len(pending)} migration(s) to apply" + (
                f": {', '.join(pending)}" if pending else ""
            )

        runner.run("plan", plan)

    def _commit(self, runner: StepRunner, release: Release, state: _DeployState) -> None:
        assert state.before is not None
        pending = state.before.pending
        if self.env.backup == "always" or (self.env.backup == "auto" and pending):
            state.backup = runner.run("backup", lambda: self.target.backup(release))
            self.outcome.backup = state.backup
        else:
            runner.skip("backup", "no migrations pending" if not pending else "backup is 'never'")
        self.outcome.migrations = list(pending)
        state.migrating = bool(pending)

        def migrate() -> str:
            result = release.manage("migrate", "--noinput")
            if not result.ok:
                raise StepFailed("migrate", "migrate failed.", result.output)
            state.after = migrations.probe(release, step="migrate")
            return f"applied {len(pending)} migration(s)" if pending else "nothing to apply"

        runner.run("migrate", migrate)

    def _switch(self, runner: StepRunner, release: Release) -> None:
        runner.run("switch", lambda: self._switch_to(release.id))
        runner.run("reload", lambda: self.target.server.reload(release))
        url = self.target.url
        if url:
            runner.run("smoke", lambda: smoke.check_release(self.env, url, release.id))
        else:
            runner.skip("smoke", "the environment has no URL")

    def _upload(self, release: Release) -> str:
        assert self.outcome.commit is not None
        data = self.repo.archive(self.outcome.commit)
        self.host.extract_tar(data, release.path)
        self.host.write_text(
            posixpath.join(release.path, REVISION_FILE), self.outcome.commit + "\n"
        )
        # Written now so the new release can name itself (X-Release) once it serves.
        self.layout.write_manifest(self.host, self._manifest(release, "preparing", _DeployState()))
        return f"{len(data) // 1024} KiB from {self.outcome.commit[:12]}"

    def _clean_pyc(self, release: Release) -> str:
        result = release.manage("clean_pyc", "--path", release.path)
        if not result.ok and "Unknown command" in result.output:
            return "skipped: django-extensions is not installed in the release"
        if not result.ok:
            raise StepFailed("clean_pyc", "clean_pyc failed.", result.output)
        return "removed stale .pyc files"

    def _switch_to(self, release_id: str) -> str:
        self.host.switch_link(self.layout.current, posixpath.join("releases", release_id))
        return f"current -> releases/{release_id}"

    # Failure ----------------------------------------------------------------

    def _fail(
        self,
        outcome: Outcome,
        runner: StepRunner,
        release: Release,
        previous: str | None,
        state: _DeployState,
        error: BaseException,
    ) -> None:
        if isinstance(error, StepFailed):
            outcome.failed_step, outcome.error = error.step, str(error)
            outcome.error_output = error.output
        else:
            outcome.failed_step = outcome.steps[-1].name if outcome.steps else "upload"
            outcome.error = "Interrupted (Ctrl-C or SIGTERM)."
        undo = StepRunner(outcome.rollback_steps, self.on_step, runner.secrets)
        try:
            if state.switched:
                self._switch_back(undo, release, previous)
            if state.migrating:
                undo.run("database", lambda: self._restore_database(release, state))
            if state.switched and previous is not None and self.target.url:
                url = self.target.url
                undo.run("check", lambda: smoke.check_release(self.env, url, previous))
        except StepFailed as undo_error:
            outcome.warnings.append(f"Automatic rollback incomplete: {undo_error}")
        self.host.remove(release.path)
        outcome.status = "rolled_back" if state.switched else "failed"
        outcome.warnings += filter(None, [self.target.record(self._entry(outcome, state))])

    def _switch_back(self, undo: StepRunner, release: Release, previous: str | None) -> None:
        if previous is None:
            undo.run("switch", lambda: self._remove_current())
            undo.run("reload", lambda: self.target.server.stop())
            return
        undo.run("switch", lambda: self._switch_to(previous))
        undo.run("reload", lambda: self.target.server.reload(self.target.release(previous)))

    def _remove_current(self) -> str:
        self.host.remove(self.layout.current)
        return "removed current (first deploy)"

    def _restore_database(self, release: Release, state: _DeployState) -> str:
        assert state.before is not None
        try:
            migrations.migrate_to(release, state.before.state, step="database")
            return "migrated back to the pre-deploy state"
        except StepFailed as error:
            if state.backup is None:
                raise StepFailed(
                    "database",
                    f"{error} No backup was taken (backup is 'never'): "
                    "repair the database by hand.",
                    error.output,
                ) from None
        return self.target.restore(release, state.backup, step="database")

    # Finish -----------------------------------------------------------------

    def _finish(
        self, outcome: Outcome, runner: StepRunner, release: Release, state: _DeployState
    ) -> None:
        assert outcome.commit is not None

        def finish() -> str:
            outcome.tag = self.repo.tag(
                self.env.name, outcome.commit or "", f"Deployed to {self.env.name} as {release.id}"
            )
            self.layout.write_manifest(self.host, self._manifest(release, "deployed", state))
            removed = prune.prune(self.target)
            return f"tagged {outcome.tag}; pruned {len(removed)} old release(s)"

        try:
            runner.run("finish", finish)
        except StepFailed as error:
            outcome.warnings.append(f"Deployed, but finishing failed: {error}")
        outcome.warnings += filter(None, [self.target.record(self._entry(outcome, state))])

    def _manifest(self, release: Release, status: str, state: _DeployState) -> dict[str, Any]:
        outcome = self.outcome
        return {
            "id": release.id,
            "env": self.env.name,
            "commit": outcome.commit,
            "ref": self.ref,
            "subject": self.repo.subject(outcome.commit or "HEAD"),
            "status": status,
            "deployed_at": history.now(),
            "deployed_by": history.deployer(self.repo.identity()),
            "previous": outcome.previous,
            "venv": state.venv,
            "migrations": state.after.state if state.after else None,
            "migrations_before": state.before.state if state.before else None,
            "applied": outcome.migrations,
            "backup": (
                {"path": state.backup, "state_of": outcome.previous} if state.backup else None
            ),
            "tag": outcome.tag,
            "steps": [step.as_dict() for step in outcome.steps],
        }

    def _entry(self, outcome: Outcome, state: _DeployState | None) -> dict[str, Any]:
        return {
            "event": "deploy",
            "env": self.env.name,
            "status": outcome.status,
            "release": outcome.release,
            "commit": outcome.commit,
            "ref": self.ref,
            "previous": outcome.previous,
            "at": history.now(),
            "by": history.deployer(self.repo.identity()),
            "failed_step": outcome.failed_step,
            "error": outcome.error,
            "backup": outcome.backup,
            "migrations": outcome.migrations,
            "tag": outcome.tag,
            "steps": [step.as_dict() for step in outcome.steps],
            "rollback_steps": [step.as_dict() for step in outcome.rollback_steps],
        }


class _DeployState:
    """What a deploy has done so far: what the undo must undo."""

    def __init__(self) -> None:
        self.venv: str | None = None
        self.before: migrations.MigrationReport | None = None
        self.after: migrations.MigrationReport | None = None
        self.backup: str | None = None
        self.migrating = False
        self.switched = False


def _manage_ok(release: Release, step: str, args: tuple[str, ...]) -> str:
    result = release.manage(*args)
    if not result.ok:
        raise StepFailed(step, f"manage.py {' '.join(args)} failed.", result.output)
    lines = result.output.strip().splitlines()
    return lines[-1] if lines else "ok"
