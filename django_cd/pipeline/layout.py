"""The release layout of one environment on a host (see DESIGN.md).

::

    <root>/releases/<release-id>/   code, REVISION, release.json, .venv -> venvs/<hash>
    <root>/current -> releases/<id>
    <root>/shared/                  .env, backups/, log/, run/ (server pid files)
    <root>/venvs/<hash>/
    <root>/history.jsonl
    <root>/.lock
    <root>/journal                  the running deploy's intent (pipeline.journal)
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django_cd.pipeline.files import BACKUP_MODE, LOG_MODE, SECRETS_MODE
from django_cd.pipeline.host import Host

RELEASE_FILE = "release.json"
REVISION_FILE = "REVISION"


@dataclass(frozen=True)
class Layout:
    """The paths of one environment's deploy root on a host."""

    root: str

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    @property
    def releases(self) -> str:
        return self.path("releases")

    @property
    def current(self) -> str:
        return self.path("current")

    @property
    def shared(self) -> str:
        return self.path("shared")

    @property
    def venvs(self) -> str:
        return self.path("venvs")

    @property
    def backups(self) -> str:
        return self.path("shared", "backups")

    @property
    def logs(self) -> str:
        return self.path("shared", "log")

    @property
    def run_dir(self) -> str:
        return self.path("shared", "run")

    @property
    def env_file(self) -> str:
        return self.path("shared", ".env")

    @property
    def history(self) -> str:
        return self.path("history.jsonl")

    @property
    def lock(self) -> str:
        return self.path(".lock")

    @property
    def journal(self) -> str:
        return self.path("journal")

    def release(self, release_id: str) -> str:
        return self.path("releases", release_id)

    def ensure(self, host: Host) -> None:
        """Create the directories a deploy writes to, private (idempotent).

        A root made by an older version (0755 directories, 0644 files) is
        tightened here too. The code and virtualenvs keep their own modes: the
        directories above them already close them to others.
        """
        privacy = host.privacy
        directories = [self.root, self.releases, self.shared, self.venvs]
        directories += [self.backups, self.logs, self.run_dir]
        for directory in directories:
            host.makedirs(directory)
            host.set_mode(directory, privacy.dir_mode)
        for release_id in self.release_ids(host):
            host.set_mode(self.release(release_id), privacy.dir_mode)
            self._tighten(host, posixpath.join(self.release(release_id), RELEASE_FILE))
        for path in (self.history, self.lock):
            self._tighten(host, path)
        for name in host.listdir(self.shared):
            self._tighten(host, self.path("shared", name))
        self._tighten(host, self.env_file, SECRETS_MODE)
        for directory, mode in ((self.backups, BACKUP_MODE), (self.logs, LOG_MODE)):
            for name in host.listdir(directory):
                self._tighten(host, posixpath.join(directory, name), mode)
        for name in host.listdir(self.run_dir):
            self._tighten(host, posixpath.join(self.run_dir, name))

    @staticmethod
    def _tighten(host: Host, path: str, mode: int | None = None) -> None:
        # Regular files only: sockets and FIFOs in run/ belong to the app server,
        # and a directory in shared/ (media/) keeps what the project gave it.
        if host.is_file(path):
            host.set_mode(path, host.privacy.file_mode if mode is None else mode)

    def current_release(self, host: Host) -> str | None:
        """The id of the release ``current`` points at, or None before the first deploy."""
        target = host.readlink(self.current)
        return posixpath.basename(target.rstrip("/")) if target else None

    def release_ids(self, host: Host) -> list[str]:
        """Release ids on the host, oldest first (ids sort by deploy time)."""
        return [name for name in host.listdir(self.releases) if not name.startswith(".")]

    def read_manifest(self, host: Host, release_id: str) -> dict[str, Any]:
        """The release's ``release.json``; ``{"id": ...}`` when it has none.

        A damaged one (cut short by a full disk, edited by hand) never crashes a
        reader: it reads as status ``unreadable`` with a ``problem`` naming the file.
        """
        path = posixpath.join(self.release(release_id), RELEASE_FILE)
        if not host.exists(path):
            return {"id": release_id}
        try:
            data = json.loads(host.read_text(path))
        except (ValueError, OSError) as error:
            data = error
        if not isinstance(data, dict):
            why = f"not valid JSON ({data})" if isinstance(data, ValueError) else str(data)
            return {
                "id": release_id,
                "status": "unreadable",
                "problem": f"{path} cannot be read: {why}. Restore it from a backup or "
                "remove the release.",
            }
        return data

    def write_manifest(self, host: Host, manifest: dict[str, Any]) -> None:
        path = posixpath.join(self.release(manifest["id"]), RELEASE_FILE)
        host.write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def new_release_id(commit: str, existing: list[str], now: datetime | None = None) -> str:
    """``20261121T234500Z-abc1234``: sorts by time, names the commit, never repeats."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{commit[:7]}"
    candidate, n = base, 1
    while candidate in existing:
        n += 1
        candidate = f"{base}.{n}"
    return candidate
