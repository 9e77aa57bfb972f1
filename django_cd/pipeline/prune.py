"""Old releases pruned to ``KEEP_RELEASES``, never one still needed.

Kept: the newest ``KEEP_RELEASES`` releases that were deployed, the current
and the previous release, and any release whose database state a kept
release's backup holds (that backup is only useful with that release's code).
A release a killed deploy left half-made (``preparing``, or no manifest)
never takes one of those slots: the next deploy's pruning removes it.
Virtualenvs go when no kept release links to them and no running app server
runs from them.

Backups (``shared/backups/<release-id>.dump``, named after the deploy that
took them) follow the releases: those of kept releases stay; of deploys that
failed or were killed (no release directory left, or one that never became
``deployed``) the newest ``KEEP_FAILED_BACKUPS`` stay for inspection; the
rest go. Files in ``backups/`` that are not named like a release's backup
are the operator's and are left alone.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from django_cd import conf
from django_cd.pipeline.release import VENV_LINK

if TYPE_CHECKING:
    from django_cd.pipeline.target import Target

# ``<release-id>.dump`` and django-dbbackup's ``<release-id>.dump.metadata``.
BACKUP_NAME = re.compile(
    r"^(?P<release>\d{8}T\d{6}Z-[0-9A-Za-z]+(?:\.\d+)?)\.dump(?:\.metadata)?$"
)
# Manifest states of a deploy that never finished (failed, or killed mid-way).
UNFINISHED = ("preparing", "unknown", "failed")


def protected(target: Target) -> set[str]:
    """Release ids that pruning must keep whatever their age."""
    host, layout = target.host, target.layout
    ids = [i for i in layout.release_ids(host) if not _half_made(layout.read_manifest(host, i))]
    keep = set(ids[-target.keep_releases :])
    current = layout.current_release(host)
    if current:
        keep.add(current)
        previous = layout.read_manifest(host, current).get("previous")
        if previous:
            keep.add(previous)
    for release_id in list(keep):
        backup = layout.read_manifest(host, release_id).get("backup") or {}
        if backup.get("state_of") and host.exists(str(backup.get("path", ""))):
            keep.add(backup["state_of"])
    return keep


def prune(target: Target) -> list[str]:
    """Remove releases beyond ``KEEP_RELEASES``, their backups and unused venvs.

    Returns the removed release ids.
    """
    host, layout = target.host, target.layout
    keep = protected(target)
    removed = []
    backups = backups_by_release(target)
    for release_id in layout.release_ids(host):
        if release_id in keep:
            continue
        status = layout.read_manifest(host, release_id).get("status", "unknown")
        finished = status not in UNFINISHED
        host.remove(layout.release(release_id))
        removed.append(release_id)
        # A finished release's backup goes with it; a failed deploy's stays for
        # prune_backups to keep among the last KEEP_FAILED_BACKUPS.
        for name in backups.get(release_id, []) if finished else []:
            host.remove(posixpath.join(layout.backups, name))
    prune_backups(target, keep)
    prune_venvs(target)
    return removed


def backups_by_release(target: Target) -> dict[str, list[str]]:
    """The backup files in ``shared/backups``, by the release id that names them."""
    found: dict[str, list[str]] = {}
    for name in target.host.listdir(target.layout.backups):
        match = BACKUP_NAME.match(name)
        if match:
            found.setdefault(match.group("release"), []).append(name)
    return found


def failed_backups(target: Target) -> list[str]:
    """Release ids, oldest first, whose backup was taken by a deploy that did not finish."""
    host, layout = target.host, target.layout
    present = set(layout.release_ids(host))
    return sorted(
        release_id
        for release_id in backups_by_release(target)
        if release_id not in present
        or layout.read_manifest(host, release_id).get("status", "unknown") in UNFINISHED
    )


def prune_backups(target: Target, keep: set[str] | None = None) -> list[str]:
    """Remove backups of pruned releases and all but the newest ``KEEP_FAILED_BACKUPS``
    of failed deploys. Returns the removed file names."""
    host, layout = target.host, target.layout
    keep = protected(target) if keep is None else keep
    failed = failed_backups(target)
    count = int(conf.get_config()["KEEP_FAILED_BACKUPS"])
    inspect = set(failed[len(failed) - count :]) if count else set()
    removed = []
    for release_id, names in sorted(backups_by_release(target).items()):
        # A release's own backup lives as long as the release; ``failed`` holds
        # every id without a finished release behind it.
        if release_id in inspect or (release_id in keep and release_id not in failed):
            continue
        for name in names:
            host.remove(posixpath.join(layout.backups, name))
            removed.append(name)
    return removed


def prune_venvs(target: Target) -> list[str]:
    """Remove virtualenvs no release links to and no running server runs from."""
    host, layout = target.host, target.layout
    used = {target.server.venv_in_use()}
    for release_id in layout.release_ids(host):
        link = host.readlink(posixpath.join(layout.release(release_id), VENV_LINK))
        if link:
            used.add(posixpath.basename(link.rstrip("/")))
    removed = [name for name in host.listdir(layout.venvs) if name not in used]
    for name in removed:
        host.remove(posixpath.join(layout.venvs, name))
    return removed


def _half_made(manifest: dict[str, object]) -> bool:
    # Pruning runs under the lock after this deploy marked its release deployed, so
    # any release still preparing (or without a manifest) belongs to a dead deploy.
    return manifest.get("status", "unknown") in ("preparing", "unknown")
