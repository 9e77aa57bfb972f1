"""One deploy or rollback per environment at a time: the ``.lock`` file.

The lock file holds who took it, from which host and process, since when
and for what. A lock whose process is gone (same host) or that is older than
``DJANGO_CD["LOCK_TIMEOUT"]`` is stale: reported, and broken only when asked.

Taking, breaking and freeing happen under ``Host.guard`` on ``.lock.guard``, so
two deployers never both break one stale lock and both hold it, and a loser
never mistakes a lock being freed for a stale one.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from django_cd.pipeline.errors import LockHeld
from django_cd.pipeline.host import Host


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock."""

    user: str
    host: str
    pid: int
    since: str
    action: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}) since {self.since} for {self.action}"

    @classmethod
    def parse(cls, text: str) -> LockInfo | None:
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(
                user=str(data["user"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                since=str(data["since"]),
                action=str(data["action"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class Lock:
    """The deploy lock of one environment; use as a context manager."""

    def __init__(
        self,
        host: Host,
        path: str,
        *,
        action: str,
        timeout: float,
        break_stale: bool = False,
    ) -> None:
        self.host = host
        self.path = path
        self.timeout = timeout
        self.break_stale = break_stale
        self.info = LockInfo(
            user=getpass.getuser(),
            host=host.name,
            pid=os.getpid(),
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            action=action,
        )
        #: What the stale lock this one replaced held, when ``break_stale`` broke one.
        self.broken: str | None = None
        self.held = False

    @property
    def guard_path(self) -> str:
        return self.path + ".guard"

    def acquire(self) -> None:
        """Take the lock, or raise ``LockHeld`` saying who holds it."""
        text = json.dumps(asdict(self.info)) + "\n"
        with self.host.guard(self.guard_path):
            if self.host.create_exclusive(self.path, text):
                self.held = True
                return
            raw = self._raw()
            holder = LockInfo.parse(raw) if raw is not None else None
            stale_reason = self.stale_reason(holder)
            if stale_reason is None:
                raise LockHeld(
                    f"Another deploy holds the lock: {holder.describe() if holder else '?'}. "
                    "Wait for it to finish, then run again."
                )
            if not self.break_stale:
                who = holder.describe() if holder else "an unreadable lock file"
                raise LockHeld(
                    f"The lock is stale ({stale_reason}): {who}. "
                    "Make sure no deploy is running, then run again with --break-lock."
                )
            self.broken = (
                holder.describe() if holder else f"an unreadable lock file ({raw!r:.200})"
            )
            self.host.remove(self.path)
            if not self.host.create_exclusive(self.path, text):  # pragma: no cover - guarded
                raise LockHeld("Another deploy took the lock just now. Wait, then run again.")
            self.held = True

    def release(self) -> None:
        if self.held:
            with self.host.guard(self.guard_path):
                self.host.remove(self.path)
            self.held = False

    def holder(self) -> tuple[LockInfo | None, str | None] | None:
        """(holder, why it is stale or None) of the lock on the host; None when free."""
        with self.host.guard(self.guard_path):
            raw = self._raw()
        if raw is None:
            return None
        holder = LockInfo.parse(raw)
        return holder, self.stale_reason(holder)

    def _raw(self) -> str | None:
        try:
            return self.host.read_text(self.path)
        except FileNotFoundError:
            return None

    def stale_reason(self, holder: LockInfo | None) -> str | None:
        """Why ``holder``'s lock is stale, or None while it may still be working."""
        if holder is None:
            return "the lock file cannot be read"
        if holder.host == self.host.name and not self.host.pid_alive(holder.pid):
            return f"pid {holder.pid} is gone"
        try:
            since = datetime.fromisoformat(holder.since)
        except ValueError:
            return "its time cannot be read"
        age = (datetime.now(UTC) - since).total_seconds()
        if age > self.timeout:
            return f"it is older than LOCK_TIMEOUT ({self.timeout:.0f} s)"
        return None

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Every way out, Ctrl-C included, frees the lock.
        self.release()
