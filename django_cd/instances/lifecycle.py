"""Create, deploy, refresh, destroy, list and prune the instances of a template.

create: every input checked first (name, template, branch, source database, its
size, the target database, a slot, a port), then under the instance's lock: a
fresh copy of ``database_from``'s database, the instance's ``shared/.env``, the
``scrub`` command on the copy, and the normal deploy of the branch (migrate runs
the branch's migrations on the copy). Nothing exists before the checks pass; a
failure before the deploy removes what was made.
"""

from __future__ import annotations

import contextlib
import posixpath
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django_cd import conf
from django_cd.env import read_env_file
from django_cd.instances import database, venvs
from django_cd.instances.config import SEPARATOR, InstanceError, Template
from django_cd.instances.registry import Record, Registry, now
from django_cd.pipeline import history, smoke
from django_cd.pipeline.deploy import Deploy
from django_cd.pipeline.errors import LockHeld, PipelineError
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.host import Host, LocalHost
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.lock import Lock
from django_cd.pipeline.release import Release, read_env_values
from django_cd.pipeline.secrets import mask, secret_values
from django_cd.pipeline.steps import Outcome, StepResult
from django_cd.pipeline.target import Target, base_dir

SCRUB_TIMEOUT = 1800.0


@dataclass
class Result:
    """What an instance action did: the instance, the copy, the deploy's outcome."""

    action: str
    name: str
    env: str
    url: str
    ref: str
    database: str
    status: str = "ready"
    copy: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "name": self.name,
            "env": self.env,
            "url": self.url,
            "ref": self.ref,
            "database": self.database,
            "status": self.status,
            "copy": self.copy,
            "deploy": self.outcome.as_dict() if self.outcome else None,
            "seconds": round(self.seconds, 3),
        }


class Instances:
    """The instances of one template on this host."""

    def __init__(
        self,
        template: Template,
        *,
        host: Host | None = None,
        repository: Repository | None = None,
        on_step: Callable[[StepResult], None] | None = None,
        break_lock: bool = False,
    ) -> None:
        self.template = template
        self.host = host or LocalHost()
        self.registry = Registry(template, self.host)
        self._repo = repository
        self.on_step = on_step
        self.break_lock = break_lock

    @classmethod
    def of(cls, env_name: str, **options: Any) -> Instances:
        return cls(Template.of(conf.get_environment(env_name)), **options)

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = Repository.find(conf.get_config()["REPOSITORY"], base_dir())
        return self._repo

    def environment(self, record: Record) -> conf.Environment:
        return self.template.environment(record.name, record.port)

    # Databases ------------------------------------------------------------------------

    def source(self) -> tuple[conf.Environment, database.Database]:
        """The environment named by ``database_from`` and its database."""
        env = conf.get_environment(self.template.options["database_from"])
        if env.strict and not self.template.options["copy_from_live"]:
            raise InstanceError(  # the system check says so too (E146); never copy by accident
                f"{env.name!r} is live-like; set copy_from_live to copy its database."
            )
        return env, self._database_of(Layout(env.root).env_file, f"{env.name!r}")

    def _database_of(self, env_file: str, whose: str) -> database.Database:
        variable = self.template.options["database_variable"]
        if not self.host.exists(env_file):
            raise InstanceError(
                f"{env_file} does not exist, so the database of {whose} is unknown: "
                f"write {variable}=... there (docs/instances.md)."
            )
        url = read_env_file(env_file).get(variable)
        if not url:
            raise InstanceError(
                f"{env_file} has no {variable}: the database of {whose} is unknown. Add it, "
                "or set the template's database_variable."
            )
        return database.Database.from_url(url, f"{variable} of {env_file}")

    def target_database(self, name: str, source: database.Database) -> database.Database:
        """Instance ``name``'s database: the template's server and credentials, its own name."""
        base = self._database_of(self.template.env_file, f"the template {self.template.name!r}")
        if base.engine != source.engine:
            raise InstanceError(
                f"The template's {self.template.options['database_variable']} is "
                f"{base.engine} but the source is {source.engine}: instances copy within "
                "one engine. Point it at the same kind of database."
            )
        db_name = self.template.database(name)
        if base.engine == "sqlite" and not db_name.startswith("/"):
            db_name = posixpath.join(self.template.root(name), "shared", db_name)
        target = base.renamed(db_name)
        same_server = (target.host, target.port) == (source.host, source.port)
        if target.name == source.name and (same_server or target.engine == "sqlite"):
            raise InstanceError(
                f"Instance {name!r} would use the source database {source.name!r} itself: "
                "give the template's 'database' a pattern such as 'notes_{name}'."
            )
        return target

    # create ----------------------------------------------------------------------------

    def create(
        self, name: str, ref: str, *, port: int | None = None, or_refresh: bool = False
    ) -> Result:
        """A new instance of branch ``ref`` on a fresh copy of the source database."""
        started = time.monotonic()
        self.template.check_name(name)
        if self.registry.get(name) is not None:
            if or_refresh:
                return self.refresh(name, ref=ref)
            raise InstanceError(
                f"Instance {name!r} of {self.template.name!r} exists already. Deploy its "
                f"branch with manage.py instance deploy --env={self.template.name} {name}, "
                "start it afresh with instance refresh, or choose another name."
            )
        commit = self._resolve(ref)
        source_env, source = self.source()
        target = self.target_database(name, source)
        self._check_source(source)
        if database.exists(target):
            raise InstanceError(
                f"The {target.describe()} exists already and belongs to no instance: drop "
                "it, or choose another instance name."
            )
        root = self.template.root(name)
        with self.registry.allocation_lock():
            self._check_slot(name, root)
            record = Record(
                name=name,
                template=self.template.name,
                ref=ref,
                port=self.registry.choose_port(port),
                database=target.name,
                created_by=history.deployer(self.repo.identity()).get("user", ""),
            )
            self.registry.save(record)
        try:
            lock = self._lock(name, "create")
        except LockHeld:
            self.registry.remove(name)
            raise
        try:
            return self._build(record, source_env, source, target, commit, started)
        except BaseException:
            if record.status == "creating":  # nothing served yet: leave nothing behind
                self._remove(record, target)
            raise
        finally:
            lock.release()

    def _exists(self, ref: str) -> bool:
        try:
            self.repo.resolve(ref)
        except PipelineError:
            return False
        return True

    def _resolve(self, ref: str) -> str:
        try:
            return self.repo.resolve(ref)
        except PipelineError as error:
            raise InstanceError(str(error)) from None

    def _check_source(self, source: database.Database) -> None:
        if not database.exists(source):
            raise InstanceError(f"The source {source.describe()} does not exist.")
        limit = float(self.template.options["max_database_mb"])
        size = database.size_mb(source)
        if size > limit:
            raise InstanceError(
                f"The source {source.describe()} holds {size:.0f} MB, more than the "
                f"template's max_database_mb ({limit:.0f} MB): nothing was copied. Raise "
                "max_database_mb, or shrink the source (staging data need not be complete)."
            )

    def _check_slot(self, name: str, root: str) -> None:
        if self.registry.get(name) is not None:  # a create of the same name just won
            raise InstanceError(
                f"Instance {name!r} of {self.template.name!r} was created a moment ago by "
                "another command: use it, or choose another name."
            )
        existing = self.registry.records()
        limit = int(self.template.options["max_instances"])
        if len(existing) >= limit:
            raise InstanceError(
                f"{self.template.name!r} has {len(existing)} instances, its max_instances: "
                f"destroy one (manage.py instance destroy --env={self.template.name} NAME) or "
                "prune old ones (instance prune --older-than 7d)."
            )
        if self.host.exists(root):
            raise InstanceError(
                f"{root} exists already and is no instance of {self.template.name!r}: remove "
                "it, or choose another instance name."
            )

    def _build(
        self,
        record: Record,
        source_env: conf.Environment,
        source: database.Database,
        target: database.Database,
        commit: str,
        started: float,
    ) -> Result:
        env = self.environment(record)
        Layout(env.root).ensure(self.host)
        record.copy = self._copy(source, target)
        self._write_env_file(record, target)
        self._scrub(source_env, env)
        record.status = "deploying"
        self.registry.save(record)
        return self._deploy(record, commit, "create", started)

    def _copy(self, source: database.Database, target: database.Database) -> dict[str, Any]:
        copied = database.copy(source, target)
        result = {"method": copied.method, "seconds": round(copied.seconds, 3)}
        self._step("copy", f"{copied.method}: {source.name} -> {target.name}", copied.seconds)
        return result

    def _write_env_file(self, record: Record, target: database.Database) -> None:
        """``shared/.env``: the template's, with the instance's database and places."""
        env = self.environment(record)
        values = read_env_file(self.template.env_file)
        values = {
            k: v.replace("{name}", record.name).replace("{root}", env.root)
            for k, v in values.items()
        }
        values[self.template.options["database_variable"]] = target.url
        text = "".join(f"{key}={value}\n" for key, value in values.items())
        self.host.write_text(Layout(env.root).env_file, text)

    def _scrub(self, source_env: conf.Environment, env: conf.Environment) -> None:
        """Run the ``scrub`` command on the fresh copy, before anything serves it.

        It runs with the code of the source's current release, whose models match
        the copied data, and the instance's settings and ``shared/.env``.
        """
        command = self.template.options["scrub"]
        if not command:
            return
        started = time.monotonic()
        source = Target(source_env, self.host)
        current = source.layout.current_release(self.host)
        if current is None:
            raise InstanceError(
                f"The scrub command needs {source_env.name!r}'s code, but nothing is deployed "
                "there: deploy it first."
            )
        release = _SourceCodeRelease(
            env, self.host, Layout(env.root), current, location=source.release(current).path
        )
        result = release.manage(*shlex.split(command), timeout=SCRUB_TIMEOUT)
        secrets = secret_values(read_env_file(Layout(env.root).env_file))
        if not result.ok:
            raise InstanceError(
                f"The scrub command {command!r} failed (exit {result.returncode}); the copy "
                f"was dropped.\n{mask(result.output.strip()[-2000:], secrets)}"
            )
        self._step("scrub", command, time.monotonic() - started)

    def _deploy(self, record: Record, ref: str, action: str, started: float) -> Result:
        env = self.environment(record)
        venvs.prepare(self.template, self.host, self.repo, self.repo.resolve(ref), env.root)
        outcome = Deploy(
            env, ref=ref, host=self.host, repository=self.repo, on_step=self.on_step
        ).run()
        record.status = "ready" if outcome.status == "success" else "failed"
        record.updated_at = now()
        self.registry.save(record)
        return Result(
            action=action,
            name=record.name,
            env=env.name,
            url=env.url or "",
            ref=record.ref,
            database=record.database,
            status=record.status,
            copy=record.copy,
            outcome=outcome,
            seconds=time.monotonic() - started,
        )

    def _step(self, name: str, detail: str, seconds: float) -> None:
        if self.on_step is not None:
            self.on_step(StepResult(name, "ok", seconds, detail))

    # deploy, refresh ---------------------------------------------------------------------

    def deploy(self, name: str, ref: str | None = None) -> Result:
        """Deploy the instance's branch (its new commits), or ``ref`` from now on."""
        started = time.monotonic()
        record = self.registry.require(name)
        commit = self._resolve(ref or record.ref)
        with self._locked(name, "deploy"):
            record.ref = ref or record.ref
            return self._deploy(record, commit, "deploy", started)

    def refresh(self, name: str, ref: str | None = None) -> Result:
        """A fresh copy of the source database, then the branch deployed onto it."""
        started = time.monotonic()
        record = self.registry.require(name)
        commit = self._resolve(ref or record.ref)
        source_env, source = self.source()
        target = self.target_database(name, source)
        self._check_source(source)
        with self._locked(name, "refresh"):
            env = self.environment(record)
            target_env = Target(env, self.host)
            with target_env.lock("refresh"):
                target_env.server.stop()
                # No release matches the fresh copy: the deploy is a first deploy again.
                self.host.remove(target_env.layout.current)
                database.drop(target)
            record.ref = ref or record.ref
            try:
                record.copy = self._copy(source, target)
                self._write_env_file(record, target)
                self._scrub(source_env, env)
            except BaseException:
                database.drop(target)  # an unscrubbed copy must not stay behind
                record.status = "failed"
                self.registry.save(record)
                raise
            return self._deploy(record, commit, "refresh", started)

    # destroy -----------------------------------------------------------------------------

    def destroy(self, name: str) -> str:
        """Stop the instance's server, drop its database, remove its root and record."""
        record = self.registry.require(name)
        env = self.environment(record)
        with self._locked(name, "destroy"):
            target = Target(env, self.host)
            # A deploy run straight through manage.py deploy --env holds the engine's lock.
            engine_lock = target.lock("destroy", self.break_lock)
            if self.host.exists(target.layout.root):
                engine_lock.acquire()
            try:
                target.server.stop()
                self._remove(record, self._database_of_instance(record))
            except BaseException:
                engine_lock.release()
                raise
            engine_lock.held = False  # its file went with the root
        return (
            f"destroyed {env.name}: server stopped, database {record.database} dropped, "
            f"{env.root} removed"
        )

    def _database_of_instance(self, record: Record) -> database.Database | None:
        env_file = Layout(self.template.root(record.name)).env_file
        if not self.host.exists(env_file):
            return None  # died before the copy
        return self._database_of(env_file, f"instance {record.name!r}")

    def _remove(self, record: Record, db: database.Database | None) -> None:
        env = self.environment(record)
        if db is not None:
            database.drop(db)
        self.host.remove(env.root)
        self._delete_tags(env.name)
        self.registry.remove(record.name)

    def _delete_tags(self, env_name: str) -> None:
        with contextlib.suppress(PipelineError):
            tags = self.repo.git("tag", "--list", f"cd/{env_name}/*").split()
            if tags:
                self.repo.git("tag", "-d", *tags)

    # list, prune ---------------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        """Every instance: branch, commit, URL, database, age, and whether it answers."""
        rows = []
        for record in self.registry.records():
            env = self.environment(record)
            layout = Layout(env.root)
            current = layout.current_release(self.host)
            manifest = layout.read_manifest(self.host, current) if current else {}
            url = env.url or ""
            rows.append(
                {
                    "name": record.name,
                    "env": env.name,
                    "ref": record.ref,
                    "commit": manifest.get("commit"),
                    "release": current,
                    "url": url,
                    "database": record.database,
                    "status": record.status,
                    "copy": record.copy,
                    "created_at": record.created_at,
                    "updated_at": record.updated_at,
                    "age_seconds": int(record.age_seconds()),
                    "answers": bool(url) and smoke.fetch(url, timeout=2.0) is not None,
                }
            )
        return rows

    def prune(
        self, older_than: float | None, *, gone: bool = False, dry_run: bool = False
    ) -> list[str]:
        """Destroy instances not created, deployed or refreshed for ``older_than`` seconds,
        and with ``gone`` those whose branch the repository no longer has (merged and
        deleted, after ``git fetch --prune``)."""
        at = datetime.now(UTC)
        old = [
            r.name
            for r in self.registry.records()
            if (older_than is not None and r.age_seconds(at) > older_than)
            or (gone and not self._exists(r.ref))
        ]
        if not dry_run:
            for name in old:
                self.destroy(name)
            # The pool keeps a venv while any instance links to it (destroy leaves it
            # for the next instance of the same requirements).
            remaining = [self.template.root(r.name) for r in self.registry.records()]
            venvs.prune_pool(self.template, self.host, remaining)
        return old

    def _lock(self, name: str, action: str) -> Lock:
        lock = self.registry.lock(name, f"instance {action}", self.break_lock)
        try:
            lock.acquire()
        except LockHeld as error:
            raise LockHeld(f"Instance {name!r}: {error}") from None
        return lock

    @contextlib.contextmanager
    def _locked(self, name: str, action: str) -> Iterator[Lock]:
        lock = self._lock(name, action)
        try:
            yield lock
        finally:
            lock.release()


@dataclass(frozen=True)
class _SourceCodeRelease(Release):
    """The source's current release run as the instance: the instance's settings and
    ``shared/.env`` (its database), never the variables the source release was
    deployed with (its ``.env`` snapshot)."""

    def env_file_values(self) -> dict[str, str]:
        return read_env_values(self.host, self.layout.env_file)


def resolve(env_name: str) -> conf.Environment | None:
    """``<template>.<instance>`` as an environment (for status, rollback, server ...)."""
    template_name, dot, name = env_name.partition(SEPARATOR)
    if not dot:
        return None
    env = conf.environments().get(template_name)
    if env is None or env.instances is None:
        return None
    try:
        template = Template.of(env)
        record = Registry(template, LocalHost()).get(name)
    except InstanceError:
        return None
    return template.environment(name, record.port) if record else None
