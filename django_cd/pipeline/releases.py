"""The releases on a host, as ``manage.py releases`` shows them."""

from __future__ import annotations

from typing import Any

from django_cd.pipeline.history import describe_deployer
from django_cd.pipeline.target import Target


def list_releases(target: Target) -> list[dict[str, Any]]:
    """Every release on the host, newest first, with what its manifest records."""
    host, layout = target.host, target.layout
    current = layout.current_release(host)
    rows = []
    for release_id in reversed(layout.release_ids(host)):
        manifest = layout.read_manifest(host, release_id)
        backup = manifest.get("backup") or {}
        rows.append(
            {
                "id": release_id,
                "commit": manifest.get("commit"),
                "subject": manifest.get("subject", ""),
                "current": release_id == current,
                "status": manifest.get("status", "unknown"),
                "deployed_at": manifest.get("deployed_at"),
                "deployed_by": describe_deployer(manifest.get("deployed_by")),
                "backup": backup.get("path"),
                "tag": manifest.get("tag"),
            }
        )
    return rows
