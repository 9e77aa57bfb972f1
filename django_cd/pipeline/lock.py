"""One deploy or rollback per environment at a time: the ``.lock`` file.

The lock file holds who took it, from which machine and process, since when,
for what, and a heartbeat: the holder rewrites it every ``HEARTBEAT_SECONDS``
(or a sixth of the expiry, if less) while it works. A lock whose process is gone
(checked on the deploying machine) or that is older than ``DJANGO_CD["LOCK_TIMEOUT"]``
is stale: reported, and broken only when asked. A lock whose heartbeat stopped
``DJANGO_CD["LOCK_EXPIRY"]`` seconds ago has expired: its holder died where no one
can check its pid (another machine, a fleet's primary host), so the next deploy
takes it over and history says so.

Taking, breaking and freeing happen under ``Host.guard`` on ``.lock.guard``, so
two deployers never both break one stale lock and both hold it, and a loser
never mistakes a lock being freed for a stale one.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from django_cd.pipeline.errors import LockHeld
from django_cd.pipeline.host import Host, LocalHost

#: How often, at most, the holder refreshes the lock's heartbeat.
HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock."""

    user: str
    host: str
    pid: int
    since: str
    action: str
    #: When the holder last said it is at work; None in a lock of an older version.
    heartbeat: str | None = None

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}) since {self.since} for {self.action}"

    def silent_for(self) -> float | None:
        """Seconds since the last heartbeat, or None when it cannot be told."""
        try:
            beat = datetime.fromisoformat(self.heartbeat or "")
        except ValueError:
            return None
        return (datetime.now(UTC) - beat).total_seconds()

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
                heartbeat=str(data["heartbeat"]) if data.get("heartbeat") else None,
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
        expiry: float = 60.0,
        break_stale: bool = False,
    ) -> None:
        self.host = host
        self.path = path
        self.timeout = timeout
        #: A lock whose heartbeat is older than this has expired (its holder is gone).
        self.expiry = expiry
        self.beat_every = min(HEARTBEAT_SECONDS, expiry / 6)
        self.break_stale = break_stale
        now = _now()
        self.info = LockInfo(
            # The deploying machine: where its pid can be checked, wherever the lock is.
            user=getpass.getuser(),
            host=socket.gethostname(),
            pid=os.getpid(),
            since=now,
            action=action,
            heartbeat=now,
        )
        #: What the stale lock this one replaced held, when ``break_stale`` broke one.
        self.broken: str | None = None
        #: What the expired lock this one took over held (no ``--break-lock`` needed).
        self.expired: str | None = None
        self.held = False
        self._beating = threading.Event()
        self._heart: threading.Thread | None = None

    @property
    def guard_path(self) -> str:
        return self.path + ".guard"

    def acquire(self) -> None:
        """Take the lock, or raise ``LockHeld`` saying who holds it."""
        text = json.dumps(asdict(self.info)) + "\n"
        with self.host.guard(self.guard_path):
            if self.host.create_exclusive(self.path, text):
                self._hold()
                return
            raw = self._raw()
            holder = LockInfo.parse(raw) if raw is not None else None
            expired = self.expired_reason(holder)
            if holder is not None and expired is not None:
                self.expired = f"{holder.describe()}: {expired}"
                self.host.write_text(self.path, text)
                self._hold()
                return
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
            self._hold()

    def _hold(self) -> None:
        self.held = True
        self._beating.clear()
        self._heart = threading.Thread(target=self._beat, name="lock-heartbeat", daemon=True)
        self._heart.start()

    def _beat(self) -> None:
        """Refresh the heartbeat while held; a beat that fails is tried again next time
        (a lock that expires while its holder lives is taken over, so keep trying)."""
        while not self._beating.wait(self.beat_every):
            self.info = replace(self.info, heartbeat=_now())
            try:
                with self.host.guard(self.guard_path):
                    if self._beating.is_set():
                        return
                    self.host.write_text(self.path, json.dumps(asdict(self.info)) + "\n")
            except Exception:  # the deploy itself reports a host it lost
                continue

    def release(self) -> None:
        if self.held:
            self._beating.set()
            if self._heart is not None and self._heart is not threading.current_thread():
                self._heart.join(timeout=self.beat_every + 5)
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
        if holder.host == socket.gethostname() and not LocalHost().pid_alive(holder.pid):
            return f"pid {holder.pid} is gone"
        try:
            since = datetime.fromisoformat(holder.since)
        except ValueError:
            return "its time cannot be read"
        age = (datetime.now(UTC) - since).total_seconds()
        if age > self.timeout:
            return f"it is older than LOCK_TIMEOUT ({self.timeout:.0f} s)"
        return None

    def expired_reason(self, holder: LockInfo | None) -> str | None:
        """Why ``holder``'s lock has expired (its heartbeat stopped), or None."""
        if holder is None:
            return None
        silent = holder.silent_for()
        if silent is None or silent <= self.expiry:
            return None
        return f"its heartbeat stopped {silent:.0f} s ago (LOCK_EXPIRY {self.expiry:.0f} s)"

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
