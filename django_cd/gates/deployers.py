"""``deployers``: who may deploy to an environment.

This guards against mistakes (deploying live from the wrong shell or job);
it is not access control: whoever holds the host's SSH keys can deploy
anyway. An entry is ``user:NAME`` (the OS user), ``git:NAME-OR-EMAIL`` (the
checkout's git identity), ``ci:NAME`` (the CI user, from the first variable of
``DJANGO_CD["CI_IDENTITY_VARIABLES"]`` that is set), or a bare name matching
any of them.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence

from django_cd import conf

KINDS = ("user", "git", "ci")


def identity(git_identity: str | None) -> dict[str, str]:
    """Who is deploying: OS user, git identity ("Name <email>") and CI user, as known."""
    who = {"user": getpass.getuser()}
    if git_identity:
        who["git"] = git_identity
    for variable in conf.get_config()["CI_IDENTITY_VARIABLES"]:
        if os.environ.get(variable):
            who["ci"] = os.environ[variable]
            who["ci_variable"] = variable
            break
    return who


def bad_entries(entries: Sequence[str]) -> list[str]:
    """Entries whose ``kind:`` prefix is not one of :data:`KINDS`."""
    bad = []
    for entry in entries:
        kind, sep, name = entry.partition(":")
        if sep and (kind not in KINDS or not name):
            bad.append(entry)
    return bad


def _names(who: dict[str, str], kind: str) -> set[str]:
    value = who.get(kind)
    if not value:
        return set()
    if kind == "git" and "<" in value:
        name, _, email = value.partition("<")
        return {value, name.strip(), email.rstrip(">").strip()}
    return {value}


def matching(entries: Sequence[str], who: dict[str, str]) -> str | None:
    """The first entry that names ``who``, or None."""
    for entry in entries:
        kind, sep, name = entry.partition(":")
        kinds = (kind,) if sep else KINDS
        wanted = name if sep else entry
        if any(wanted in _names(who, k) for k in kinds):
            return entry
    return None


def describe(who: dict[str, str]) -> str:
    parts = [f"user {who['user']}"]
    if who.get("git"):
        parts.append(f"git {who['git']}")
    if who.get("ci"):
        parts.append(f"ci {who['ci_variable']}={who['ci']}")
    return ", ".join(parts)
