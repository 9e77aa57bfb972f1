"""``deploy``: a new release, built aside, switched in atomically, checked, or undone.

prepare (no effect on traffic): upload -> venv -> check -> clean_pyc ->
collectstatic -> serve_check (the application imports) -> plan (pending
migrations). commit, under the lock: backup (when migrations are pending,
or always) -> migrate. switch: current ->
reload -> smoke. finish: tag, release.json, history, prune.

A failure before the switch removes the half-made release (and migrates the
database back, or restores the backup, when migrate had begun); a failure at
or after the switch switches back, reloads, undoes the migrations, and
checks the previous release answers. Any exception takes that path, not only
a failing step. Before each step the journal records the intent, so a deploy
killed outright is found by the next command (``pipeline.journal``).
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from django_cd import conf
from django_cd.flags import releases as flag_releases
from django_cd.monitoring import announce  # issue 12: notifications, Sentry, StatsD
from django_cd.pipeline import (
    consistency,
    history,
    journal,
    migrations,
    preflight,
    processes,  # issue 14 §7: role processes
    project_steps,
    prune,
)
from django_cd.pipeline.agent import agents
from django_cd.pipeline.errors import (
    PipelineError,
    Refused,
    StepFailed,
    StepSkipped,
    describe_os_error,
)
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.host import Host
from django_cd.pipeline.interrupt import terminate_as_interrupt
from django_cd.pipeline.journal import Journal
from django_cd.pipeline.layout import REVISION_FILE, new_release_id
from django_cd.pipeline.release import Release, read_env_values
from django_cd.pipeline.steps import Outcome, StepResult, StepRunner
from django_cd.pipeline.target import Target, base_dir
from django_cd.pipeline.venv import ensure_venv
from django_cd.pipeline.watch import watch_step  # issue 12: the watch after the switch
from django_cd.smoke.config import watch_options

if TYPE_CHECKING:
    from django_cd.gates import Report

STEP_NAMES = conf.BUILT_IN_STEPS


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
        predeploy: dict[str, Any] | None = None,
        gates: Report | None = None,
    ) -> None:
        self.target = Target(env, host) if host else Target(env)
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.ref = ref
        self.allow_dirty = allow_dirty
        self.break_lock = break_lock
        self.on_step = on_step
        # The gates' verdicts, the deployer's identity and any --force reason (recorded).
        self.predeploy = gates.record() if gates is not None else predeploy
        # The gates evaluated so far; the target gates are asked of the new release in
        # the check step, so one Django process serves them and the deploy.
        self.gates = gates
        self.repo = repository or Repository.find(conf.get_config()["REPOSITORY"], base_dir())
        self.steps = project_steps.arrange(env)
        self.outcome = Outcome(action="deploy", env=env.name, url=self.target.url)
        # Whether the uploaded archive holds .pyc files (committed ones) for clean_pyc.
        self._archive_has_pyc = True
        self._archive_size = 0

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
            "steps": self._planned_steps(backup),
            "backup": backup,
            "migrations": pending,
            "lints": report.lints if report is not None else None,
            "note": note,
            "url": self.target.url,
            "environment": self._environment_change(current),
        }

    def _planned_steps(self, backup: bool) -> list[str]:
        steps = [
            project_steps.describe(planned)
            for planned in self.steps
            if planned.name != "backup" or backup
        ]
        if not self.env.processes:  # issue 14 §7: only when the environment has some
            steps.remove("processes")
        if watch_options(self.env).seconds > 0:  # issue 12: the watch after smoke
            steps.insert(steps.index("smoke") + 1, "watch")
        return steps

    def _environment_change(self, current: str | None) -> str:
        """How ``shared/.env`` differs from what the current release runs with (names only)."""
        if current is None:
            return "first deploy"
        release = self.target.release(current)
        if not self.host.exists(release.env_snapshot):
            return "unknown: the current release has no copy of shared/.env"
        before = release.env_file_values()
        now = read_env_values(self.host, self.layout.env_file)
        changes = [
            *(f"{name} added" for name in sorted(now.keys() - before.keys())),
            *(f"{name} removed" for name in sorted(before.keys() - now.keys())),
            *(
                f"{name} changed"
                for name in sorted(now.keys() & before.keys())
                if now[name] != before[name]
            ),
        ]
        return "changed: " + ", ".join(changes) if changes else "unchanged"

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
        lock = self.target.take_lock(
            f"deploy of {outcome.commit[:12]}", self.break_lock, self.repo.identity()
        )
        try:
            with terminate_as_interrupt(), agents(self.host):
                self._leftovers(outcome)
                self._run_locked(outcome)
        finally:
            lock.release()
            outcome.seconds = time.monotonic() - started
        if outcome.status != "refused":  # a refusal is not a deploy (as before the lock)
            outcome.warnings += announce(self.target, outcome)  # issue 12: never raises
        return outcome

    def refuse(self, error: str, step: str) -> None:
        """Record in history that this deploy was refused before it began (the gates)."""
        try:
            self.outcome.commit = self.repo.resolve(self.ref)
        except PipelineError:  # the ref itself may be what was refused
            self.outcome.commit = None
        self.outcome.status = "refused"
        self._refused(self.outcome, error, step)

    def _refused(self, outcome: Outcome, error: str, step: str = "resolve") -> None:
        outcome.error = error
        outcome.failed_step = step
        if self.host.exists(self.layout.root):
            try:
                history.append(self.host, self.layout, self._entry(outcome, None))
            except OSError as write_error:
                outcome.warnings.append(describe_os_error(write_error, self.layout.history))

    def _leftovers(self, outcome: Outcome) -> None:
        """Refuse after a dead command that changed things (it is cleaned up otherwise)."""
        dead = journal.leftover(self.target, history.deployer(self.repo.identity()))
        if dead is None:
            return
        message = (
            f"An earlier {dead.describe()}, so the database or the release that serves "
            "may not be what history says. Nothing was changed. Run manage.py status "
            f"--env={self.env.name} to see how far it got, then manage.py repair "
            f"--env={self.env.name} to finish or undo it."
        )
        self._refused(outcome, message, step="journal")
        raise PipelineError(message)

    def _run_locked(self, outcome: Outcome) -> None:
        assert outcome.commit is not None
        runner = StepRunner(
            outcome.steps, self.on_step, self.target.secrets(), where=self.layout.root
        )
        state = _DeployState()
        release: Release | None = None
        previous: str | None = None
        try:
            previous = self.layout.current_release(self.host)
            outcome.previous = previous
            release = self.target.release(
                new_release_id(outcome.commit, self.layout.release_ids(self.host))
            )
            outcome.release = release.id
            state.journal = Journal.begin(
                self.host,
                self.layout,
                action="deploy",
                release=release.id,
                previous=previous,
                commit=outcome.commit,
            )
            runner.on_start = state.journal.intend
            self._prepare(runner, release, state)
            self._commit(runner, release, state)
            state.switched = True
            self._switch(runner, release)
        except (Exception, KeyboardInterrupt) as error:
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
        built_in: dict[str, Callable[[], str]] = {
            "check": lambda: self._check(release),
            "clean_pyc": lambda: self._clean_pyc(release),
            "collectstatic": lambda: self._collectstatic(release, state),
            "serve_check": lambda: preflight.serve_check(release, self.target.server.wsgi),
        }
        self._run_steps(
            runner, release, project_steps.between(self.steps, "venv", "plan"), built_in
        )

        def plan() -> str:
            state.before = migrations.probe(release)
            self._verify_database(state.before)
            assert state.journal is not None
            state.journal.note(migrations_before=state.before.state)
            pending = state.before.pending
            return f"{len(pending)} migration(s) to apply" + (
                f": {', '.join(pending)}" if pending else ""
            )

        runner.run("plan", plan)

    def _verify_database(self, report: migrations.MigrationReport) -> None:
        """Refuse when the database is not what the current release left it as."""
        previous = self.outcome.previous
        if previous is None:
            return
        expected = self.layout.read_manifest(self.host, previous).get("migrations")
        if isinstance(expected, dict):
            differences = consistency.compare(report, expected)
            if report.unknown:
                differences.append(
                    f"applied but unknown to the new code: {', '.join(report.unknown)}"
                )
            if not differences:
                return
            problem = (
                f"The database does not match release {previous}, which is current "
                f"({'; '.join(differences)}): a deploy that died or a migrate run by hand "
                f"changed it. Run manage.py status --env={self.env.name}, then "
                f"manage.py repair --env={self.env.name}."
            )
        else:  # no recorded state (an older release): ask the current code itself
            problem = consistency.check(self.target, previous).problem(self.env.name) or ""
        if problem:
            raise StepFailed("plan", problem)

    def _commit(self, runner: StepRunner, release: Release, state: _DeployState) -> None:
        assert state.before is not None
        pending = state.before.pending
        if self.env.backup == "always" or (self.env.backup == "auto" and pending):
            state.backup = runner.run(
                "backup", lambda: self.target.backup(release, self.outcome.warnings)
            )
            self.outcome.backup = state.backup
            assert state.journal is not None
            state.journal.note(backup=state.backup)
        else:
            runner.skip("backup", "no migrations pending" if not pending else "backup is 'never'")
        self.outcome.migrations = list(pending)
        state.migrating = bool(pending)

        def migrate() -> str:
            if not pending:
                state.after = state.before
                raise StepSkipped("no migrations pending (the plan found none)")
            result = release.manage("migrate", "--noinput")
            if not result.ok:
                raise StepFailed("migrate", "migrate failed.", result.output)
            state.after = migrations.probe(release, step="migrate")
            return f"applied {len(pending)} migration(s)"

        runner.run("migrate", migrate)
        self._run_steps(
            runner, release, project_steps.between(self.steps, "migrate", "switch"), {}
        )

    def _run_steps(
        self,
        runner: StepRunner,
        release: Release,
        planned: list[project_steps.Planned],
        built_in: dict[str, Callable[[], str]],
    ) -> None:
        """Run the engine's steps of a phase, with the project's own in their places."""
        for each in planned:
            step = each.step
            if step is None:
                runner.run(each.name, built_in[each.name])
            elif step.skip:
                runner.skip(each.name, "skipped: the environment's steps say so")
            elif step.when == "first_deploy" and self.outcome.previous is not None:
                runner.skip(each.name, "runs only on the environment's first deploy")
            else:
                runner.run(
                    each.name, partial(project_steps.run, release, step, self.outcome.warnings)
                )

    def _switch(self, runner: StepRunner, release: Release) -> None:
        runner.run("switch", lambda: self._switch_to(release.id))
        runner.run("reload", lambda: self.target.server.reload(release))
        processes.restart_step(runner, self.target, release)  # issue 14 §7
        url = self.target.url
        if url:
            runner.run("smoke", lambda: self.target.check_serving(url, release.id))
            watch_step(runner, release, url)  # issue 12: only when env "watch" is set
        else:
            runner.skip("smoke", "the environment has no URL")

    def _upload(self, release: Release) -> str:
        assert self.outcome.commit is not None
        data = self.repo.archive(self.outcome.commit)
        self.host.extract_tar(data, release.path)
        self._archive_size = len(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            self._archive_has_pyc = any(name.endswith(".pyc") for name in archive.getnames())
        self.host.write_text(
            posixpath.join(release.path, REVISION_FILE), self.outcome.commit + "\n"
        )
        release.snapshot_env_file()
        # Written now so the new release can name itself (X-Release) once it serves.
        self.layout.write_manifest(self.host, self._manifest(release, "preparing", _DeployState()))
        return f"{len(data) // 1024} KiB from {self.outcome.commit[:12]}"

    def _check(self, release: Release) -> str:
        """``check --deploy``; in a deploy that the gates let through so far, the target
        gates asked of the new release (``check --deploy`` is one of them)."""
        if self.gates is None:
            return _check(release)
        from django_cd.gates.target import release_gates

        verdict = release_gates(self.target, release, self._archive_size, unpacked=True)
        for gate in verdict.gates:
            self.gates.add(gate)
        self.predeploy = self.gates.record()
        if not self.gates.ok:
            raise Refused(self.gates.refusal())
        # The gates' warnings first: the line may be cut to the terminal's width.
        warned = [f"{g.name} warns: {g.message}" for g in verdict.gates if g.result == "warn"]
        passed = ", ".join(g.name for g in verdict.gates if g.result != "warn")
        checked = describe_check_issues(verdict.check_output or "")
        return "; ".join([*warned, f"gates {passed} passed", f"check --deploy: {checked}"])

    def _collectstatic(self, release: Release, state: _DeployState) -> str:
        """``collectstatic``, or a copy of the previous release's collection when the
        static inputs did not change (``django_cd.static``)."""
        args = ["cdcollect", "--release", release.path]
        previous = self.outcome.previous
        manifest = self.layout.read_manifest(self.host, previous) if previous else {}
        recorded = manifest.get("static")
        if isinstance(recorded, dict) and recorded.get("root"):
            args += ["--previous-root", str(recorded["root"])]
        result = release.manage(*args)
        if not result.ok and "Unknown command" in result.output:  # a release without it
            return _manage_ok(release, "collectstatic", ("collectstatic", "--noinput"))
        if not result.ok:
            raise StepFailed(
                "collectstatic", "manage.py collectstatic --noinput failed.", result.output
            )
        lines = result.output.strip().splitlines()
        try:
            answer = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise StepFailed("collectstatic", "cdcollect gave no answer.", result.output) from None
        state.static = {"fingerprint": answer["fingerprint"], "root": answer["root"]}
        if answer["reused"] is not None:
            raise StepSkipped(
                f"static inputs unchanged since {previous}: copied its {answer['reused']} "
                "collected file(s)"
            )
        return lines[-2] if len(lines) > 1 else "collected"

    def _clean_pyc(self, release: Release) -> str:
        if not self._archive_has_pyc:
            raise StepSkipped("a fresh git archive without .pyc files: nothing stale to remove")
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
        release: Release | None,
        previous: str | None,
        state: _DeployState,
        error: BaseException,
    ) -> None:
        outcome.failed_step, outcome.error, outcome.error_output = _failure(error, runner)
        undo = StepRunner(outcome.rollback_steps, self.on_step, runner.secrets)
        complete = True
        try:
            if release is not None and state.switched:
                self._switch_back(undo, release, previous)
            if release is not None and state.migrating:
                undo.run("database", lambda: self._restore_database(release, state))
        except StepFailed as undo_error:
            complete = False
            outcome.warnings.append(
                f"Automatic rollback incomplete: {undo_error} The half-made release is kept "
                f"for manage.py repair --env={self.env.name}."
            )
        if complete and state.switched and previous is not None and self.target.url:
            # Everything is undone; whether the previous release is healthy is a finding,
            # not a half-done undo (a repair could not change it).
            url = self.target.url
            try:
                undo.run("check", lambda: self.target.check_serving(url, previous))
            except StepFailed as check_error:
                outcome.warnings.append(
                    f"The previous release {previous} serves again but fails the check: "
                    f"{check_error}"
                )
        outcome.status = (
            "rolled_back"
            if state.switched
            else "refused"
            if isinstance(error, Refused)
            else "failed"
        )
        if release is not None and complete:
            try:
                self.host.remove(release.path)
                # Failed deploys' backups are kept for inspection, but only the last few.
                prune.prune_backups(self.target)
            except OSError as remove_error:
                outcome.warnings.append(describe_os_error(remove_error, release.path))
        self._record(outcome, state)
        if state.journal is not None:
            if complete:
                state.journal.close()
            else:
                state.journal.leave(undo_failed=True)

    def _switch_back(self, undo: StepRunner, release: Release, previous: str | None) -> None:
        if previous is None:
            undo.run("switch", lambda: self._remove_current())
            undo.run("reload", lambda: self.target.server.stop())
            processes.restart_step(undo, self.target, None, quiet=True)  # issue 14 §7
            return
        undo.run("switch", lambda: self._switch_to(previous))
        undo.run("reload", lambda: self.target.server.reload(self.target.release(previous)))
        processes.restart_step(undo, self.target, self.target.release(previous), quiet=True)

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
        # The new release serves and passed its check: the deploy succeeded. What is
        # left must not undo that, nor be lost: a Ctrl-C here only cuts it short.
        assert outcome.commit is not None

        def finish() -> str:
            try:
                state.flags = flag_releases.record(release)
            except ValueError as error:  # FlagError: the deploy stands, without the snapshot
                outcome.warnings.append(f"Flag states not recorded: {error}")
            # First what a rollback needs (the release marked deployed); the tag is a
            # label, and a tag that cannot be written must not cost the release that.
            self.layout.write_manifest(self.host, self._manifest(release, "deployed", state))
            try:
                outcome.tag = self.repo.tag(
                    self.env.name,
                    outcome.commit or "",
                    f"Deployed to {self.env.name} as {release.id}",
                )
                tagged = f"tagged {outcome.tag}"
            except PipelineError as error:
                outcome.warnings.append(f"Deployed, but the commit was not tagged: {error}")
                tagged = "not tagged"
            removed = prune.prune(self.target)
            return f"{tagged}; pruned {len(removed)} old release(s)"

        try:
            runner.run("finish", finish)
        except StepFailed as error:
            outcome.warnings.append(f"Deployed, but finishing failed: {error}")
        except KeyboardInterrupt:
            outcome.warnings.append("Deployed, but interrupted while finishing (tag, pruning).")
        self._record(outcome, state)
        if state.journal is not None:
            state.journal.close()

    def _record(self, outcome: Outcome, state: _DeployState) -> None:
        try:
            outcome.warnings += filter(None, [self.target.record(self._entry(outcome, state))])
        except OSError as error:
            outcome.warnings.append(describe_os_error(error, self.layout.history))

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
            "flags": state.flags,
            "static": state.static,
            "steps": [step.as_dict() for step in outcome.steps],
            "predeploy": self.predeploy,
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
            "warnings": [self.target.mask(warning) for warning in outcome.warnings],
            "predeploy": self.predeploy,
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
        self.journal: Journal | None = None
        self.flags: dict[str, Any] | None = None
        self.static: dict[str, Any] | None = None


def _failure(error: BaseException, runner: StepRunner) -> tuple[str, str, str]:
    """(failed step, message, output) of whatever stopped a deploy or rollback."""
    if isinstance(error, StepFailed):
        return error.step, str(error), error.output
    step = runner.running or (runner.results[-1].name if runner.results else "start")
    if isinstance(error, KeyboardInterrupt):
        return step, "Interrupted (Ctrl-C or SIGTERM).", ""
    if isinstance(error, OSError):
        return step, runner.mask(describe_os_error(error, runner.where)), ""
    return step, runner.mask(f"Unexpected error: {type(error).__name__}: {error}"), ""


def _manage_ok(release: Release, step: str, args: tuple[str, ...]) -> str:
    result = release.manage(*args)
    if not result.ok:
        raise StepFailed(step, f"manage.py {' '.join(args)} failed.", result.output)
    lines = result.output.strip().splitlines()
    return lines[-1] if lines else "ok"


# "?: (security.W004) You have not set ..." or "notes.Note: (models.W042) ...".
CHECK_ISSUE = re.compile(r"^(?:\S+: )?\(([\w.]+)\) (.+)$", re.M)


def _check(release: Release) -> str:
    """``check --deploy``; the issues it reports are shown, not only counted."""
    result = release.manage("check", "--deploy")
    if not result.ok:
        raise StepFailed("check", "manage.py check --deploy failed.", result.output)
    return describe_check_issues(result.output)


def describe_check_issues(output: str) -> str:
    """The issues in ``check``'s output, ids first: a step line cut to the terminal's
    width still names each one."""
    issues = CHECK_ISSUE.findall(output)
    if not issues:
        return "no issues"
    ids = ", ".join(check_id for check_id, _ in issues)
    return f"{len(issues)} issue(s): {ids}: " + "; ".join(f"{i} {m}" for i, m in issues)
