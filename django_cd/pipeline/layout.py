"""The release layout of one environment on a host (see DESIGN.md).

::

    <root>/releases/<release-id>/   code, REVISION, release.json, .venv -> venvs/<hash>
    <root>/current -> releases/<id>
    <root>/shared/                  .env, backups/, log/, run/ (server pid files)
    <root>/venvs/<hash>/
    <root>/history.jsonl
    <root>/.lock
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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

    def release(self, release_id: str) -> str:
        return self.path("releases", release_id)

    def ensure(self, host: Host) -> None:
        """Create the directories a deploy writes to (idempotent)."""
        for directory in (self.releases, self.shared, self.venvs, self.backups, self.logs):
            host.makedirs(directory)
        host.makedirs(self.run_dir)

    def current_release(self, host: Host) -> str | None:
        """The id of the release ``current`` points at, or None before the first deploy."""
        target = host.readlink(self.current)
        return posixpath.basename(target.rstrip("/")) if target else None

    def release_ids(self, host: Host) -> list[str]:
        """Release ids on the host, oldest first (ids sort by deploy time)."""
        return [name for name in host.listdir(self.releases) if not name.startswith(".")]

    def read_manifest(self, host: Host, release_id: str) -> dict[str, Any]:
        path = posixpath.join(self.release(release_id), RELEASE_FILE)
        if not host.exists(path):
            return {"id": release_id}
        data: dict[str, Any] = json.loads(host.read_text(path))
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
