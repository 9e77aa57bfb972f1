"""A ``Target``: one environment on one host, and what deploys and rollbacks share."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from django_cd import conf
from django_cd.pipeline import history, smoke
from django_cd.pipeline.errors import PipelineError, StepFailed, describe_os_error
from django_cd.pipeline.files import BACKUP_MODE, Privacy
from django_cd.pipeline.host import Host, LocalHost
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.lock import Lock
from django_cd.pipeline.release import Release, read_env_values
from django_cd.pipeline.restore import restore_clean
from django_cd.pipeline.secrets import mask, secret_values
from django_cd.pipeline.server import AppServer, server_for


@dataclass
class Target:
    """``env`` on ``host``: its layout, app server and secrets."""

    env: conf.Environment
    host: Host = field(default_factory=LocalHost)

    def __post_init__(self) -> None:
        if not self.env.is_local and isinstance(self.host, LocalHost):
            # Never deploy "to web1" by writing to this machine instead.
            raise PipelineError(
                f"Environment {self.env.name!r} lists SSH hosts, so it has no target on "
                "this machine: reach its hosts through django_cd.pipeline.fleet."
            )
        if self.env.instances is not None:  # issue 15: a template is never deployed itself
            raise PipelineError(
                f"Environment {self.env.name!r} is a template of testing instances, not a "
                f"deploy target: run manage.py instance create --env={self.env.name} NAME "
                "--ref BRANCH (docs/instances.md)."
            )
        self.layout = Layout(self.env.root)
        self.host.privacy = Privacy(self.env.group)
        self.server: AppServer = server_for(self.env, self.host, self.layout)

    @property
    def url(self) -> str | None:
        return self.env.url or self.server.url

    @property
    def lock_timeout(self) -> float:
        return float(conf.get_config()["LOCK_TIMEOUT"])

    @property
    def keep_releases(self) -> int:
        return int(conf.get_config()["KEEP_RELEASES"])

    def release(self, release_id: str) -> Release:
        return Release(self.env, self.host, self.layout, release_id)

    def secrets(self) -> list[str]:
        """Secret values of the target's ``shared/.env``, to mask in any output."""
        try:
            return secret_values(read_env_values(self.host, self.layout.env_file))
        except OSError:  # missing or unreadable: nothing of it can be printed either
            return []

    def mask(self, text: str) -> str:
        """``text`` with the target's secrets masked."""
        return mask(text, self.secrets())

    def check_serving(self, url: str, release_id: str) -> str:
        """The post-switch check of ``release_id`` at ``url`` (``smoke.check_serving``)."""
        return smoke.check_serving(self.env, url, release_id, self.server)

    def backup_path(self, release_id: str) -> str:
        return posixpath.join(self.layout.backups, f"{release_id}.dump")

    def backup(self, release: Release, warnings: list[str] | None = None) -> str:
        """Back up the database with django-dbbackup, named after ``release``; a note on
        a ``backup_compression`` the database's dump cannot take goes to ``warnings``."""
        path = self.backup_path(release.id)
        level = self.env.backup_compression
        if level is None:
            result = release.manage("dbbackup", "--noinput", "-d", "default", "-O", path)
        else:  # the same dump, at the level asked for (cdbackup)
            result = release.manage("cdbackup", "--output", path, "--compression", str(level))
        if not result.ok:
            raise StepFailed("backup", "The database backup (dbbackup) failed.", result.output)
        self.host.set_mode(path, BACKUP_MODE)
        if level is not None and "not applied" in result.output and warnings is not None:
            warnings.append(
                f"backup_compression {level} applies only to PostgreSQL (pg_dump) backups: "
                "this database's dump was written uncompressed. Remove the setting."
            )
        return path

    def restore(self, release: Release, path: str, step: str) -> str:
        """Restore the backup at ``path`` through ``release``'s code and settings."""
        if not self.host.exists(path):
            raise StepFailed(step, f"The backup {path} is gone; restore the database by hand.")
        # PostgreSQL: into a clean schema, so objects the failed release created go too.
        if restore_clean(release, path, step):
            return f"restored {posixpath.basename(path)}"
        result = release.manage("dbrestore", "--noinput", "-d", "default", "-I", path)
        if not result.ok:
            raise StepFailed(step, f"Restoring {path} (dbrestore) failed.", result.output)
        return f"restored {posixpath.basename(path)}"

    def lock(self, action: str = "status", break_stale: bool = False) -> Lock:
        """The environment's lock (not taken): ``take_lock`` takes it."""
        return Lock(
            self.host,
            self.layout.lock,
            action=action,
            timeout=self.lock_timeout,
            expiry=float(conf.get_config()["LOCK_EXPIRY"]),
            break_stale=break_stale,
        )

    def take_lock(self, action: str, break_stale: bool, git_identity: str | None = None) -> Lock:
        """Create the layout and take the environment's lock (``LockHeld`` if taken)."""
        lock = self.lock(action, break_stale)
        try:
            self.layout.ensure(self.host)
            lock.acquire()
            self.record_broken_lock(lock, history.deployer(git_identity))
        except OSError as error:
            lock.release()
            raise PipelineError(describe_os_error(error, self.layout.lock)) from None
        return lock

    def record_broken_lock(self, lock: Lock, who: dict[str, str]) -> None:
        """History notes every stale lock that ``--break-lock`` broke, and every expired
        one taken over."""
        if lock.broken is None and lock.expired is None:
            return
        history.append(
            self.host,
            self.layout,
            {
                "event": "lock_broken" if lock.broken else "lock_expired",
                "env": self.env.name,
                "at": history.now(),
                "by": who,
                "stale_lock": lock.broken or lock.expired,
                "for": lock.info.action,
            },
        )

    def record(self, entry: dict[str, Any], mirror_with: Release | None = None) -> str | None:
        """Write ``entry`` to history.jsonl, then mirror what the target's database lacks
        of it (this entry, and any earlier one whose mirror was lost), with the serving
        release's code, or ``mirror_with``'s (one whose code fits the database as well,
        and whose agent already runs).

        Returns a warning when the mirror fails: the file is the source of truth.
        """
        history.append(self.host, self.layout, entry)
        release = mirror_with
        if release is None or not self.host.exists(release.path):
            current = self.layout.current_release(self.host)
            if current is None or not self.host.exists(self.layout.release(current)):
                return None
            release = self.release(current)
        # Every entry the database lacks, this one and any whose mirror was lost.
        result = release.manage(
            "record_deployment",
            "--history",
            self.layout.history,
            "--env",
            self.env.name,
            timeout=120,
        )
        if not result.ok and "--history" in result.output:  # a release from before it
            result = release.manage("record_deployment", stdin=json.dumps(entry), timeout=120)
        if not result.ok:
            last = (result.output.strip().splitlines() or ["(no output)"])[-1]
            return "The deployment was not mirrored into the database: " + mask(
                last, self.secrets()
            )
        return None


def base_dir() -> str | None:
    value = getattr(settings, "BASE_DIR", None)
    return str(value) if value is not None else None
