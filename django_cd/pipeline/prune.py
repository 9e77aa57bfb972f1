"""Old releases pruned to ``KEEP_RELEASES``, never one still needed.

Kept: the newest ``KEEP_RELEASES``, the current and the previous release,
and any release whose database state a kept release's backup holds (that
backup is only useful with that release's code). Virtualenvs go when no
kept release links to them and no running app server runs from them.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from django_cd.pipeline.release import VENV_LINK

if TYPE_CHECKING:
    from django_cd.pipeline.target import Target


def protected(target: Target) -> set[str]:
    """Release ids that pruning must keep whatever their age."""
    host, layout = target.host, target.layout
    ids = layout.release_ids(host)
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
    for release_id in layout.release_ids(host):
        if release_id in keep:
            continue
        backup = layout.read_manifest(host, release_id).get("backup") or {}
        host.remove(layout.release(release_id))
        if backup.get("path") and backup.get("state_of") not in keep:
            host.remove(str(backup["path"]))
            host.remove(str(backup["path"]) + ".metadata")
        removed.append(release_id)
    prune_venvs(target)
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
