"""django_cd.flags.releases: what the engine calls, run against the real command."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_cd.flags import releases
from django_cd.flags import state as flag_state
from django_cd.flags.errors import FlagError
from django_cd.models import FlagChange

from .support import put

pytestmark = pytest.mark.django_db


@dataclass
class Result:
    ok: bool
    output: str


class ThisProcess:
    """A "release" whose manage.py is this process's call_command (same code, same DB)."""

    def manage(self, *args: str, stdin: str | None = None) -> Result:
        out, old_stdin = StringIO(), sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            call_command(*args, stdout=out, stderr=out)
        except CommandError as error:
            return Result(False, out.getvalue() + str(error))
        finally:
            sys.stdin = old_stdin
        return Result(True, out.getvalue())


@override_settings(DJANGO_CD={"FLAGS": {"declared": {"kind": "release"}}})
def test_record_reconciles_then_snapshots():
    put("other", "global")
    snapshot = releases.record(ThisProcess())
    assert snapshot is not None
    assert [(f["name"], f["state"]) for f in snapshot["flags"]] == [
        ("declared", "off"),
        ("other", "on"),
    ]


def test_restore_imports_as_rollback_and_returns_the_diff():
    put("a", "global")
    snapshot = releases.record(ThisProcess())
    assert snapshot is not None
    put("a")
    lines = releases.restore(ThisProcess(), snapshot, by="deployer", reason="rollback to r1")
    assert lines == ["a: off -> on"]
    entry = FlagChange.objects.filter(name="a").first()
    assert (entry.source, entry.by, entry.reason) == ("rollback", "deployer", "rollback to r1")
    assert flag_state.read("a")["state"] == "on"


def test_restore_of_a_bad_snapshot_fails_and_changes_nothing():
    put("a")
    with pytest.raises(FlagError, match="flags import failed"):
        releases.restore(
            ThisProcess(), {"flags": [{"name": "a", "status": "maybe"}]}, by="x", reason="y"
        )
    assert flag_state.read("a")["state"] == "off"


def test_record_without_waffle_is_none():
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "django_cd"]
    with override_settings(INSTALLED_APPS=apps):
        assert releases.record(ThisProcess()) is None
