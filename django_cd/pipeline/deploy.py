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

import contextlib
import io
import json
import posixpath
import re
import tarfile
import threading
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
from django_cd.pipeline.fleet import Member, close, each, fleet_targets
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
#: Seconds between two rounds of checks of the canary hosts while they bake.
BAKE_INTERVAL = 5.0


class Deploy:
    """One deploy of ``ref`` to ``env``; ``run()`` does it, ``plan()`` only tells."""

    def __init__(
        self,
        env: conf.Environment,
        *,
        ref: str = "HEAD",
        allow_dirty: bool = False,
        break_lock: bool = False,
        skip_unreachable: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        host: Host | None = None,
        targets: list[Target] | None = None,
        repository: Repository | None = None,
        predeploy: dict[str, Any] | None = None,
        gates: Report | None = None,
    ) -> None:
        if targets is None:
            targets = [Target(env, host)] if host else fleet_targets(env)
        #: One per host; the first holds the lock, the migration host migrates.
        self.members = [Member(target) for target in targets]
        self.migrator = self.members[0]
        self.target = self.members[0].target
        self.env, self.host, self.layout = env, self.target.host, self.target.layout
        self.ref = ref
        self.allow_dirty = allow_dirty
        self.break_lock = break_lock
        #: Leave out SSH hosts that cannot be reached (never the migration host).
        self.skip_unreachable = skip_unreachable
        self.on_step = on_step
        # The gates' verdicts, the deployer's identity and any --force reason (recorded).
        self.predeploy = gates.record() if gates is not None else predeploy
        # The gates evaluated so far; the target gates are asked of the new release in
        # the check step, so one Django process serves them and the deploy.
        self.gates = gates
        self.repo = repository or Repository.find(conf.get_config()["REPOSITORY"], base_dir())
        self.steps = project_steps.arrange(env)
        self.outcome = Outcome(action="deploy", env=env.name, url=self.target.url)
        self._gates_lock = threading.Lock()  # the hosts' gates report into one table

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
            try:
                outcome.commit = self.resolve()
                self._reach()
            except PipelineError as error:
                self._refused(outcome, str(error))
                raise
            lock = self.target.take_lock(
                f"deploy of {outcome.commit[:12]}", self.break_lock, self.repo.identity()
            )
            if lock.expired:
                outcome.warnings.append(f"Took over an expired lock: {lock.expired}.")
            try:
                with terminate_as_interrupt(), contextlib.ExitStack() as stack:
                    for member in self.members:
                        stack.enter_context(agents(member.host))
                    self._leftovers(outcome)
                    self._run_locked(outcome)
            finally:
                lock.release()
                outcome.seconds = time.monotonic() - started
        except BaseException:
            close([member.target for member in self.members])
            raise
        if outcome.status != "refused":  # a refusal is not a deploy (as before the lock)
            outcome.warnings += announce(self.target, outcome)  # issue 12: never raises
        close([member.target for member in self.members])
        return outcome

    def _reach(self) -> None:
        """Connect to every host at once before anything is locked or changed; an
        unreachable host stops the deploy, naming it, unless ``skip_unreachable`` lets
        it be left out (the migration host never is)."""
        if len(self.members) == 1:
            return
        unreachable: dict[int, str] = {}

        def connect(member: Member) -> None:
            try:
                member.host.connect()
            except PipelineError as error:
                unreachable[id(member)] = str(error)

        each(self.members, connect)
        if not unreachable:
            return
        first = self.migrator
        if id(first) in unreachable or not self.skip_unreachable:
            problems = [unreachable[id(m)] for m in self.members if id(m) in unreachable]
            hint = (
                f" {first.host.name} is the migration host of {self.env.name!r}: it cannot "
                "be skipped."
                if id(first) in unreachable
                else " Pass --skip-unreachable to deploy the other hosts without them."
            )
            raise PipelineError(
                f"{len(problems)} host(s) of {self.env.name!r} cannot be reached; nothing "
                "was changed. " + " ".join(problems) + hint
            )
        skipped = [m for m in self.members if id(m) in unreachable]
        self.members = [m for m in self.members if id(m) not in unreachable]
        for member in skipped:
            self.outcome.warnings.append(
                f"Skipped {member.host.name} (--skip-unreachable): {unreachable[id(member)]} "
                "It still serves what it served; deploy again once it is back."
            )
            self.outcome.skipped_hosts.append(member.host.name)

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
        deployer = history.deployer(self.repo.identity())
        for member in self.members:
            dead = journal.leftover(member.target, deployer)
            if dead is None:
                continue
            on = f" on {member.host.name}" if member.label else ""
            message = (
                f"An earlier {dead.describe()}{on}, so the database or the release that "
                "serves may not be what history says. Nothing was changed. Run manage.py "
                f"status --env={self.env.name} to see how far it got, then manage.py "
                f"repair --env={self.env.name} to finish or undo it."
            )
            self._refused(outcome, message, step="journal")
            raise PipelineError(message)

    def _run_locked(self, outcome: Outcome) -> None:
        assert outcome.commit is not None
        fleet = len(self.members) > 1
        secrets = [value for m in self.members for value in m.target.secrets()]
        runner = StepRunner(outcome.steps, self.on_step, secrets, where=self.layout.root)
        for member in self.members:
            member.label = member.host.name if fleet else ""
            member.runner = runner.on(member.label, member.layout.root)
        outcome.hosts = [member.label for member in self.members if member.label]
        state = _DeployState()
        try:
            for member in self.members:
                member.previous = member.layout.current_release(member.host)
            outcome.previous = self.migrator.previous
            taken = {i for m in self.members for i in m.layout.release_ids(m.host)}
            release_id = new_release_id(outcome.commit, sorted(taken))
            outcome.release = release_id
            each(self.members, lambda member: self._prepare(member, release_id))
            self._plan(self.migrator, state)
            self._commit(self.migrator, state)
            self._switch(state)
        except (Exception, KeyboardInterrupt) as error:
            self._fail(outcome, runner, state, error)
            if isinstance(error, KeyboardInterrupt):
                raise
            return
        outcome.status = "success"
        self._finish(outcome, state)

    def _prepare(self, member: Member, release_id: str) -> None:
        """The new release on ``member``'s host, ready to serve; nothing serves it yet."""
        assert self.outcome.commit is not None
        member.layout.ensure(member.host)
        release = member.release = member.target.release(release_id)
        member.journal = Journal.begin(
            member.host,
            member.layout,
            action="deploy",
            release=release.id,
            previous=member.previous,
            commit=self.outcome.commit,
        )
        steps = member.steps
        steps.on_start = member.journal.intend
        steps.run("upload", lambda: self._upload(member))
        venv = steps.run_value(
            "venv",
            lambda: ensure_venv(release),
            lambda v: f"{'built' if v.created else 'reused'} venvs/{v.hash}",
        )
        member.venv = venv.hash
        built_in: dict[str, Callable[[], str]] = {
            "check": lambda: self._check(member),
            "clean_pyc": lambda: self._clean_pyc(member),
            "collectstatic": lambda: self._collectstatic(member),
            "serve_check": lambda: preflight.serve_check(release, member.target.server.wsgi),
        }
        self._run_steps(member, project_steps.between(self.steps, "venv", "plan"), built_in)

    def _plan(self, member: Member, state: _DeployState) -> None:
        """What the new code would migrate, asked of the database once (it is shared)."""
        assert member.release is not None
        release = member.release

        def plan() -> str:
            state.before = migrations.probe(release)
            self._verify_database(state.before)
            for each_member in self.members:
                assert each_member.journal is not None
                each_member.journal.note(migrations_before=state.before.state)
            pending = state.before.pending
            return f"{len(pending)} migration(s) to apply" + (
                f": {', '.join(pending)}" if pending else ""
            )

        member.steps.run("plan", plan)

    def _verify_database(self, report: migrations.MigrationReport) -> None:
        """Refuse when the database is not what the current release left it as."""
        previous = self.outcome.previous
        if previous is None:
            return
        member = self.migrator
        expected = member.layout.read_manifest(member.host, previous).get("migrations")
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
            problem = consistency.check(member.target, previous).problem(self.env.name) or ""
        if problem:
            raise StepFailed("plan", problem)

    def _commit(self, member: Member, state: _DeployState) -> None:
        """Backup and migrate, once for the environment, on the migration host."""
        assert state.before is not None and member.release is not None
        release, steps = member.release, member.steps
        pending = state.before.pending
        if self.env.backup == "always" or (self.env.backup == "auto" and pending):
            state.backup = steps.run(
                "backup", lambda: member.target.backup(release, self.outcome.warnings)
            )
            self.outcome.backup = state.backup
            assert member.journal is not None
            member.journal.note(backup=state.backup)
        else:
            steps.skip("backup", "no migrations pending" if not pending else "backup is 'never'")
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

        steps.run("migrate", migrate)
        between = project_steps.between(self.steps, "migrate", "switch")
        each(self.members, lambda m: self._run_steps(m, between, {}))

    def _run_steps(
        self,
        member: Member,
        planned: list[project_steps.Planned],
        built_in: dict[str, Callable[[], str]],
    ) -> None:
        """Run the engine's steps of a phase, with the project's own in their places."""
        steps = member.steps
        for planned_step in planned:
            step = planned_step.step
            name = planned_step.name
            if step is None:
                steps.run(name, built_in[name])
            elif step.skip:
                steps.skip(name, "skipped: the environment's steps say so")
            elif step.when == "first_deploy" and member.previous is not None:
                steps.skip(name, "runs only on the environment's first deploy")
            elif step.hosts == "migration" and member is not self.migrator:
                steps.skip(name, "runs once, on the migration host")
            else:
                assert member.release is not None
                steps.run(
                    name, partial(project_steps.run, member.release, step, self.outcome.warnings)
                )

    def _switch(self, state: _DeployState) -> None:
        """Every host onto the new release, batch after batch as the strategy says."""
        batches = switch_batches(self.env, len(self.members))
        for number, batch in enumerate(batches):
            each([self.members[i] for i in batch], self._switch_host)
            if self.env.strategy == "canary" and number == 0 and len(batches) > 1:
                self._bake([self.members[i] for i in batch])

    def _switch_host(self, member: Member) -> None:
        assert member.release is not None
        release, steps, target = member.release, member.steps, member.target
        member.switched = True  # from here on, a failure switches this host back
        steps.run("switch", lambda: self._switch_to(member, release.id))
        steps.run("reload", lambda: target.server.reload(release))
        processes.restart_step(steps, target, release)  # issue 14 §7
        url = target.url
        if url:
            steps.run("smoke", lambda: target.check_serving(url, release.id))
            watch_step(steps, release, url)  # issue 12: only when env "watch" is set
        else:
            steps.skip("smoke", "the environment has no URL")

    def _bake(self, canaries: list[Member]) -> None:
        """The canary hosts keep passing their checks for the bake period before the rest
        of the fleet switches."""
        seconds = float(self.env.rollout.bake)
        deadline = time.monotonic() + seconds
        rounds = 0

        def bake() -> str:
            nonlocal rounds
            while True:
                for member in canaries:
                    url = member.target.url
                    if url and member.release is not None:
                        try:
                            member.target.check_serving(url, member.release.id)
                        except StepFailed as error:
                            raise StepFailed(
                                "bake", f"{member.host.name} failed during the bake: {error}"
                            ) from None
                rounds += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"{len(canaries)} canary host(s) passed {rounds} round(s) of checks"
                time.sleep(min(BAKE_INTERVAL, left))

        StepRunner(self.outcome.steps, self.on_step, self.members[0].steps.secrets).run(
            "bake", bake
        )

    def _upload(self, member: Member) -> str:
        assert self.outcome.commit is not None and member.release is not None
        release = member.release
        data = self.repo.archive(self.outcome.commit)
        member.host.extract_tar(data, release.path)
        member.archive_size = len(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            member.archive_has_pyc = any(name.endswith(".pyc") for name in archive.getnames())
        member.host.write_text(
            posixpath.join(release.path, REVISION_FILE), self.outcome.commit + "\n"
        )
        release.snapshot_env_file()
        # Written now so the new release can name itself (X-Release) once it serves.
        member.layout.write_manifest(
            member.host, self._manifest(member, "preparing", _DeployState())
        )
        uploaded = f"{len(data) // 1024} KiB from {self.outcome.commit[:12]}"
        return f"{uploaded}; {self._byte_compile(member)}"

    @staticmethod
    def _byte_compile(member: Member) -> str:
        """The release's ``.pyc`` files, once for all its processes (``pipeline.bytecode``)."""
        assert member.release is not None
        if member.archive_has_pyc:
            return "not byte-compiled: the archive holds .pyc files (clean_pyc removes them)"
        # A previous release that is gone only means nothing to take: every file compiles.
        previous = member.layout.release(member.previous) if member.previous else None
        counts = member.host.byte_compile(member.release.path, previous)
        line = f"byte-compiled {counts['compiled']} file(s)"
        if counts["reused"]:
            line += f", {counts['reused']} unchanged since {member.previous}"
        if counts["failed"]:
            line += f"; {counts['failed']} cannot compile"
        return line

    def _check(self, member: Member) -> str:
        """``check --deploy``; in a deploy that the gates let through so far, the target
        gates asked of the new release (``check --deploy`` is one of them)."""
        assert member.release is not None
        if self.gates is None:
            return _check(member.release)
        from django_cd.gates.target import release_gates

        verdict = release_gates(member.target, member.release, member.archive_size, unpacked=True)
        with self._gates_lock:  # every host's verdicts go into one table
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

    def _collectstatic(self, member: Member) -> str:
        """``collectstatic``, or a copy of the previous release's collection when the
        static inputs did not change (``django_cd.static``)."""
        assert member.release is not None
        release = member.release
        args = ["cdcollect", "--release", release.path]
        previous = member.previous
        manifest = member.layout.read_manifest(member.host, previous) if previous else {}
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
        member.static = {"fingerprint": answer["fingerprint"], "root": answer["root"]}
        if answer["reused"] is not None:
            raise StepSkipped(
                f"static inputs unchanged since {previous}: copied its {answer['reused']} "
                "collected file(s)"
            )
        return lines[-2] if len(lines) > 1 else "collected"

    def _clean_pyc(self, member: Member) -> str:
        assert member.release is not None
        if not member.archive_has_pyc:
            raise StepSkipped("a fresh git archive without .pyc files: nothing stale to remove")
        result = member.release.manage("clean_pyc", "--path", member.release.path)
        if not result.ok and "Unknown command" in result.output:
            return "skipped: django-extensions is not installed in the release"
        if not result.ok:
            raise StepFailed("clean_pyc", "clean_pyc failed.", result.output)
        return "removed stale .pyc files"

    @staticmethod
    def _switch_to(member: Member, release_id: str) -> str:
        member.host.switch_link(member.layout.current, posixpath.join("releases", release_id))
        return f"current -> releases/{release_id}"

    # Failure ----------------------------------------------------------------

    def _fail(
        self,
        outcome: Outcome,
        runner: StepRunner,
        state: _DeployState,
        error: BaseException,
    ) -> None:
        running = [m.runner for m in self.members if m.runner is not None]
        outcome.failed_step, outcome.error, outcome.error_output = _failure(
            error, runner, *running
        )
        undo = StepRunner(outcome.rollback_steps, self.on_step, runner.secrets)
        for member in self.members:
            member.runner = undo.on(member.label, member.layout.root)
        switched = [m for m in self.members if m.switched and m.release is not None]
        problems: list[str] = []

        def switch_back(member: Member) -> None:
            try:
                self._switch_back(member)
            except StepFailed as undo_error:
                problems.append(str(undo_error))

        try:
            each(switched, switch_back)
            if state.migrating:
                assert self.migrator.release is not None
                release = self.migrator.release
                undo.run("database", lambda: self._restore_database(release, state))
        except StepFailed as undo_error:
            problems.append(str(undo_error))
        complete = not problems
        if not complete:
            outcome.warnings.append(
                f"Automatic rollback incomplete: {' '.join(problems)} The half-made release "
                f"is kept for manage.py repair --env={self.env.name}."
            )
        if complete:
            each(switched, lambda member: self._check_previous(member, outcome))
        outcome.status = (
            "rolled_back" if switched else "refused" if isinstance(error, Refused) else "failed"
        )
        if complete:
            for member in self.members:
                if member.release is None:
                    continue
                try:
                    member.host.remove(member.release.path)
                    # Failed deploys' backups are kept for inspection, but only the last few.
                    prune.prune_backups(member.target)
                except OSError as remove_error:
                    outcome.warnings.append(describe_os_error(remove_error, member.release.path))
        self._record(outcome, state)
        for member in self.members:
            if member.journal is not None:
                if complete:
                    member.journal.close()
                else:
                    member.journal.leave(undo_failed=True)

    def _check_previous(self, member: Member, outcome: Outcome) -> None:
        """Everything is undone; whether the previous release is healthy is a finding,
        not a half-done undo (a repair could not change it)."""
        url = member.target.url
        if member.previous is None or not url:
            return
        previous = member.previous
        try:
            member.steps.run("check", lambda: member.target.check_serving(url, previous))
        except StepFailed as check_error:
            outcome.warnings.append(
                f"The previous release {previous} serves again but fails the check: {check_error}"
            )

    def _switch_back(self, member: Member) -> None:
        steps, target = member.steps, member.target
        if member.previous is None:
            steps.run("switch", lambda: self._remove_current(member))
            steps.run("reload", lambda: target.server.stop())
            processes.restart_step(steps, target, None, quiet=True)  # issue 14 §7
            return
        previous = target.release(member.previous)
        steps.run("switch", lambda: self._switch_to(member, previous.id))
        steps.run("reload", lambda: target.server.reload(previous))
        processes.restart_step(steps, target, previous, quiet=True)

    @staticmethod
    def _remove_current(member: Member) -> str:
        member.host.remove(member.layout.current)
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
        return self.migrator.target.restore(release, state.backup, step="database")

    # Finish -----------------------------------------------------------------

    def _finish(self, outcome: Outcome, state: _DeployState) -> None:
        # The new release serves and passed its check: the deploy succeeded. What is
        # left must not undo that, nor be lost: a Ctrl-C here only cuts it short.
        assert outcome.commit is not None and self.migrator.release is not None
        release = self.migrator.release

        def finish() -> str:
            try:
                state.flags = flag_releases.record(release)
            except ValueError as error:  # FlagError: the deploy stands, without the snapshot
                outcome.warnings.append(f"Flag states not recorded: {error}")
            # First what a rollback needs (the release marked deployed); the tag is a
            # label, and a tag that cannot be written must not cost the release that.
            for member in self.members:
                member.layout.write_manifest(
                    member.host, self._manifest(member, "deployed", state)
                )
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
            removed = sum(len(prune.prune(member.target)) for member in self.members)
            return f"{tagged}; pruned {removed} old release(s)"

        try:
            StepRunner(outcome.steps, self.on_step, self.members[0].steps.secrets).run(
                "finish", finish
            )
        except StepFailed as error:
            outcome.warnings.append(f"Deployed, but finishing failed: {error}")
        except KeyboardInterrupt:
            outcome.warnings.append("Deployed, but interrupted while finishing (tag, pruning).")
        self._record(outcome, state)
        for member in self.members:
            if member.journal is not None:
                member.journal.close()

    def _record(self, outcome: Outcome, state: _DeployState) -> None:
        """History on every host that took part; the database mirrors it once."""
        entry = self._entry(outcome, state)
        for member in self.members:
            if member.release is None and member is not self.migrator:
                continue
            try:
                if member is self.migrator:
                    outcome.warnings += filter(None, [member.target.record(entry)])
                else:
                    history.append(member.host, member.layout, entry)
            except OSError as error:
                outcome.warnings.append(describe_os_error(error, member.layout.history))

    def _manifest(self, member: Member, status: str, state: _DeployState) -> dict[str, Any]:
        outcome = self.outcome
        assert member.release is not None
        return {
            "id": member.release.id,
            "env": self.env.name,
            "commit": outcome.commit,
            "ref": self.ref,
            "subject": self.repo.subject(outcome.commit or "HEAD"),
            "status": status,
            "deployed_at": history.now(),
            "deployed_by": history.deployer(self.repo.identity()),
            "previous": member.previous,
            "venv": member.venv,
            "migrations": state.after.state if state.after else None,
            "migrations_before": state.before.state if state.before else None,
            "applied": outcome.migrations,
            "backup": (
                {"path": state.backup, "state_of": outcome.previous} if state.backup else None
            ),
            "tag": outcome.tag,
            "flags": state.flags,
            "static": member.static,
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
            **({"hosts": outcome.hosts} if outcome.hosts else {}),
            **({"skipped_hosts": outcome.skipped_hosts} if outcome.skipped_hosts else {}),
        }


class _DeployState:
    """What a deploy has done to the environment's database so far (each host's part is
    its ``Member``): what the undo must undo."""

    def __init__(self) -> None:
        self.before: migrations.MigrationReport | None = None
        self.after: migrations.MigrationReport | None = None
        self.backup: str | None = None
        self.migrating = False
        self.flags: dict[str, Any] | None = None


def switch_batches(env: conf.Environment, count: int) -> list[list[int]]:
    """The hosts (indexes) switched together, batch after batch: all at once
    (``parallel``), ``rollout.batch`` at a time (``rolling``), or ``rollout.canary``
    first and then the rest (``canary``)."""
    hosts = list(range(count))
    if env.strategy == "rolling":
        size = env.rollout.batch_size(count)
        return [hosts[i : i + size] for i in range(0, count, size)]
    if env.strategy == "canary" and count > env.rollout.canary:
        return [hosts[: env.rollout.canary], hosts[env.rollout.canary :]]
    return [hosts]


def _failure(error: BaseException, runner: StepRunner, *hosts: StepRunner) -> tuple[str, str, str]:
    """(failed step, message, output) of whatever stopped a deploy or rollback; ``hosts``:
    the runners of each host's steps, into ``runner``'s results."""
    if isinstance(error, StepFailed):
        return error.step, str(error), error.output
    running = next((r.running for r in (runner, *hosts) if r.running), None)
    step = running or (runner.results[-1].name if runner.results else "start")
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
