"""Old releases pruned to ``KEEP_RELEASES``, never one still needed.

Kept: the newest ``KEEP_RELEASES``, the current and the previous release,
and any release whose database state a kept release's backup holds (that
backup is only useful with that release's code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    """Remove releases beyond ``KEEP_RELEASES`` (and their backups); the removed ids."""
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
    return removed
