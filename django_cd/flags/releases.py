"""What a deploy and a rollback ask of the flags layer, run in a release's own code.

The engine passes its release object (anything with ``manage(*args, stdin=None)``
returning ``.ok`` and ``.output``); these functions only run ``manage.py flags``
in it, so the flags layer never imports the engine.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from django_cd.flags.errors import FlagError


class Result(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def output(self) -> str: ...


class ManagedRelease(Protocol):
    def manage(self, *args: str, stdin: str | None = None) -> Result: ...


def record(release: ManagedRelease) -> dict[str, Any] | None:
    """Reconcile the declared flags, then every flag's state: the ``"flags"`` of ``release.json``.

    None when the release has no flags layer (django-waffle not installed there).
    """
    reconciled = release.manage("flags", "reconcile", "--json")
    if not reconciled.ok:
        if "django-waffle is not installed" in reconciled.output:
            return None
        raise FlagError(f"manage.py flags reconcile failed:\n{reconciled.output.strip()}")
    exported = release.manage("flags", "export", "--json")
    if not exported.ok:
        raise FlagError(f"manage.py flags export failed:\n{exported.output.strip()}")
    return dict(_json(exported.output))


def restore(
    release: ManagedRelease, snapshot: dict[str, Any], *, by: str, reason: str
) -> list[str]:
    """Import ``snapshot`` in ``release`` as a rollback (audited); the diff, one line a flag."""
    result = release.manage(
        "flags",
        "import",
        "-",
        "--yes",
        "--json",
        "--source",
        "rollback",
        "--by",
        by,
        "--reason",
        reason,
        stdin=json.dumps(snapshot),
    )
    if not result.ok:
        raise FlagError(f"manage.py flags import failed:\n{result.output.strip()}")
    from django_cd.flags.transfer import diff_lines

    return diff_lines(_json(result.output)["diff"])


def _json(output: str) -> Any:
    # The output is stdout and stderr together: skip anything before the JSON.
    start = output.find("{")
    try:
        return json.loads(output[start:] if start >= 0 else output)
    except ValueError:
        raise FlagError(f"manage.py flags printed no JSON:\n{output.strip()[:2000]}") from None
