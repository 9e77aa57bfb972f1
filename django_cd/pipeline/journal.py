"""The journal: what a running deploy or rollback is about to do, kept on disk.

Before each step with effects outside its own release directory (backup,
migrate, switch, reload, ...) the engine rewrites ``<root>/journal``
atomically with the step it is starting and the facts an undo needs (the
release it makes, the one it replaces, the migration state before, the
backup). A command that ends, however it ends, removes it; one killed with
``kill -9`` leaves it behind, and the next command knows exactly how far the
dead one got (``manage.py status``) and what ``manage.py repair`` must undo.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django_cd.pipeline.history import append, now
from django_cd.pipeline.host import Host, LocalHost
from django_cd.pipeline.layout import Layout

if TYPE_CHECKING:
    from django_cd.pipeline.target import Target

#: Steps after which the database may differ from what ``previous`` expects.
MIGRATING_STEPS = ("migrate", "database")


@dataclass
class Journal:
    """The open journal of one deploy or rollback on a host."""

    host: Host
    layout: Layout
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def begin(cls, host: Host, layout: Layout, *, action: str, **facts: Any) -> Journal:
        """Open the journal of ``action`` (``deploy``, ``rollback``, ``repair``)."""
        journal = cls(host, layout)
        journal.data = {
            "action": action,
            "pid": os.getpid(),
            # The machine the command runs on, where its pid can be checked.
            "host": socket.gethostname(),
            "user": getpass.getuser(),
            "started": now(),
            "step": None,
            "done": [],
            **facts,
        }
        journal._write()
        return journal

    def intend(self, step: str, **facts: Any) -> None:
        """Record, durably, that ``step`` starts now (and any new facts)."""
        if self.data["step"] is not None:
            self.data["done"].append(self.data["step"])
        self.data.update(step=step, **facts)
        self._write()

    def note(self, **facts: Any) -> None:
        """Record facts learnt during the current step (the backup's path, ...)."""
        self.data.update(facts)
        self._write()

    def leave(self, *, undo_failed: bool) -> None:
        """The command ends with work left for ``repair``: the journal stays, marked as
        given up, so nobody mistakes it for a command still running (the process that
        wrote it may live on: a test, a shell that ran the engine in-process)."""
        self.intend("undo", undo_failed=undo_failed, ended=now())

    def close(self) -> None:
        """The command ended and said so in history: nothing left to find."""
        self.host.remove(self.layout.journal)

    def _write(self) -> None:
        self.host.write_text(
            self.layout.journal, json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        )


@dataclass(frozen=True)
class Interrupted:
    """A journal left by a command that is no longer running."""

    data: dict[str, Any]

    @property
    def action(self) -> str:
        return str(self.data.get("action", "deploy"))

    @property
    def step(self) -> str | None:
        step = self.data.get("step")
        return str(step) if step else None

    @property
    def release(self) -> str | None:
        """The release the dead command was making current."""
        return self.data.get("release")

    @property
    def previous(self) -> str | None:
        """The release that was current when it started."""
        return self.data.get("previous")

    @property
    def touched_database(self) -> bool:
        """Whether it got as far as changing the schema (or restoring a backup)."""
        steps = [*self.data.get("done", []), self.step]
        return any(step in MIGRATING_STEPS for step in steps)

    @property
    def switched(self) -> bool:
        steps = [*self.data.get("done", []), self.step]
        return "switch" in steps

    def describe(self) -> str:
        who = f"{self.data.get('user', '?')}@{self.data.get('host', '?')}"
        what = {
            "deploy": f"deploy of {self.release}",
            "rollback": f"rollback to {self.release}",
        }.get(self.action, f"{self.action} of {self.release}")
        return (
            f"{what} (pid {self.data.get('pid')}, {who}, started {self.data.get('started')}) "
            + (
                f"ended at {self.data['ended']} with work left for repair"
                if self.data.get("ended")
                else f"died during step {self.step!r}"
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "release": self.release,
            "previous": self.previous,
            "step": self.step,
            "done": list(self.data.get("done", [])),
            "pid": self.data.get("pid"),
            "user": self.data.get("user"),
            "host": self.data.get("host"),
            "started": self.data.get("started"),
            "backup": self.data.get("backup"),
            "touched_database": self.touched_database,
            "switched": self.switched,
            "description": self.describe(),
        }


def read(host: Host, layout: Layout) -> dict[str, Any] | None:
    """The journal on the host, or None; a corrupt one is reported, never fatal."""
    if not host.exists(layout.journal):
        return None
    text = host.read_text(layout.journal)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        # Written atomically, so this is damage, not a half write: say so.
        return {"action": "unknown", "step": None, "corrupt": True, "done": []}
    return data


def interrupted(host: Host, layout: Layout) -> Interrupted | None:
    """The journal of a command that died or gave up, or None (no journal, or its
    command runs)."""
    data = read(host, layout)
    if data is None:
        return None
    pid = data.get("pid")
    if data.get("ended"):
        return Interrupted(data)
    here = socket.gethostname()
    if data.get("host") == here and isinstance(pid, int) and LocalHost().pid_alive(pid):
        return None
    return Interrupted(data)


def needs_repair(dead: Interrupted) -> bool:
    """Whether a dead command may have left the database or ``current`` changed."""
    return (
        dead.touched_database
        or dead.switched
        or bool(dead.data.get("undo_failed"))
        or dead.action not in ("deploy", "rollback")
    )


def leftover(target: Target, who: dict[str, str]) -> Interrupted | None:
    """Called holding the lock: the journal of a dead command that needs ``repair``.

    One that died before changing anything outside its release is cleaned up here
    (and recorded); whoever wrote a journal is not running, since we hold the lock.
    """
    data = read(target.host, target.layout)
    if data is None:
        return None
    dead = Interrupted(data)
    if needs_repair(dead):
        return dead
    clean_up(target, dead, who)
    return None


def clean_up(target: Target, dead: Interrupted, who: dict[str, str]) -> None:
    """After a command that died before changing anything outside its own release:
    remove its half-made release, say so in history, close its journal."""
    host, layout = target.host, target.layout
    removed = None
    release = dead.release
    if (
        dead.action == "deploy"
        and release
        and release != layout.current_release(host)
        and host.exists(layout.release(release))
    ):
        host.remove(layout.release(release))
        removed = release
    append(
        host,
        layout,
        {
            "event": dead.action,
            "env": target.env.name,
            "status": "interrupted",
            "release": release,
            "previous": dead.previous,
            "failed_step": dead.step,
            "error": f"The {dead.action} died during step {dead.step!r} (killed?); found and "
            "cleaned up by the next command. Nothing outside its release had changed.",
            "removed_release": removed,
            "journal": dead.as_dict(),
            "at": now(),
            "by": who,
        },
    )
    host.remove(layout.journal)
