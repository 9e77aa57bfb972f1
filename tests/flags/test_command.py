"""manage.py flags ...: the JSON shapes, the text lines, and refusals."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_cd.flags import state as flag_state
from django_cd.models import FlagChange

from .support import put

pytestmark = pytest.mark.django_db

DECLARED = {"FLAGS": {
    "new_checkout": {"description": "One-page checkout", "owner": "shop", "kind": "release",
                     "expires": "2020-01-01"},
    "search_v2": {"kind": "experiment", "expires": "2099-01-01"},
}}  # fmt: skip


def flags(*args: str) -> str:
    out = StringIO()
    call_command("flags", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def as_json(*args: str) -> Any:
    return json.loads(flags(*args, "--json"))


def test_list_gives_name_and_state():
    put("a", "global")
    put("b", "selective", [{"kind": "user", "value": ["staff"]}])
    put("c")
    rows = as_json("list")
    assert [(r["name"], r["state"]) for r in rows] == [
        ("a", "on"), ("b", "conditional"), ("c", "off"),
    ]  # fmt: skip
    assert "b                              conditional (user is staff)" in flags("list")


def test_on_off_percent_conditions_show_history():
    put("beta")
    assert flags("on", "beta", "--by", "grace", "--reason", "go") == "beta is now on.\n"
    assert flags("on", "beta") == "beta is already on.\n"
    assert as_json("off", "beta")["flag"]["state"] == "off"
    assert flags("percent", "beta", "25") == "beta is now conditional (25% of users).\n"
    flags("conditions", "beta", "--include", "environment=staging,live",
          "--exclude", "ip=10.0.0.0/8", "--off-after", "2099-01-01T00:00Z")  # fmt: skip
    shown = as_json("show", "beta")
    assert shown["state"] == "conditional"
    assert shown["conditions"] == [
        {"kind": "environment", "value": ["staging", "live"], "exclude": False},
        {"kind": "ip", "value": ["10.0.0.0/8"], "exclude": True},
    ]
    assert "  - not when IP in 10.0.0.0/8" in flags("show", "beta")
    history = as_json("history", "beta")
    assert [h["new_state"] for h in history] == [
        "conditional", "conditional", "off", "on", "off"
    ]  # fmt: skip
    assert history[-2]["by"] == "grace" and history[-2]["reason"] == "go"


def test_unknown_flag_and_bad_values_are_command_errors():
    put("new_checkout")
    with pytest.raises(CommandError, match="Did you mean new_checkout"):
        flags("on", "new_chekout")
    with pytest.raises(CommandError, match="Percent 101 is outside 0-100"):
        flags("percent", "new_checkout", "101")
    with pytest.raises(CommandError, match="not an IP network"):
        flags("conditions", "new_checkout", "--include", "ip=300.1.1.1/8")
    with pytest.raises(CommandError, match="is not KIND=VALUE"):
        flags("conditions", "new_checkout", "--include", "staging")
    assert FlagChange.objects.filter(name="new_checkout").count() == 1  # only the setup


@override_settings(DJANGO_CD=DECLARED)
def test_reconcile_creates_declared_flags_off_and_reports_undeclared():
    put("leftover", "global")
    result = as_json("reconcile")
    assert result == {
        "created": ["new_checkout", "search_v2"],
        "declared": ["new_checkout", "search_v2"],
        "undeclared": ["leftover"],
    }
    assert flag_state.read("new_checkout")["state"] == "off"
    assert FlagChange.objects.get(name="new_checkout").source == "reconcile"
    assert as_json("reconcile")["created"] == []


@override_settings(DJANGO_CD=DECLARED)
def test_stale_lists_expired_flags():
    rows = as_json("stale")
    assert [(r["name"], r["why"]) for r in rows] == [("new_checkout", "expired on 2020-01-01")]
    assert "new_checkout" in flags("stale") and "search_v2" not in flags("stale")


def test_export_then_import_is_a_reviewed_diff(tmp_path: Path):
    put("a", "global")
    put("b", "selective", [{"kind": "environment", "value": ["staging"]}])
    exported = tmp_path / "staging.json"
    exported.write_text(flags("export", "--json"))
    flags("off", "a")
    flags("on", "b")
    dry = flags("import", str(exported), "--dry-run")
    assert dry == "a: off -> on\nb: on -> conditional (environment is staging)\n"
    with pytest.raises(CommandError, match="Nothing changed: re-run with --yes"):
        flags("import", str(exported))
    assert flag_state.read("a")["state"] == "off"
    out = flags("import", str(exported), "--yes", "--reason", "promote staging")
    assert out.endswith("Applied 2 change(s).\n")
    assert flag_state.read("a")["state"] == "on"
    assert FlagChange.objects.filter(name="a").first().reason == "promote staging"
    assert flags("import", str(exported), "--yes") == "Nothing to change.\n"


def test_import_refuses_a_bad_file_whole(tmp_path: Path):
    put("a")
    bad = tmp_path / "bad.json"
    bad.write_text('{"flags": [{"name": "a", "status": "global"}, {"name": 3}]}')
    with pytest.raises(CommandError, match="refused, nothing changed"):
        flags("import", str(bad), "--yes")
    assert flag_state.read("a")["state"] == "off"
    bad.write_text("not json")
    with pytest.raises(CommandError, match="is not JSON"):
        flags("import", str(bad), "--yes")
    with pytest.raises(CommandError, match="Cannot read"):
        flags("import", str(tmp_path / "missing.json"), "--yes")


@override_settings(DJANGO_CD=DECLARED)
def test_a_declared_flag_can_be_switched_before_reconcile():
    assert flags("on", "search_v2") == "search_v2 is now on.\n"
    entry = FlagChange.objects.get(name="search_v2")
    assert (entry.old, entry.new["state"]) == (None, "on")  # it was not in the database yet


def test_without_waffle_in_installed_apps_the_command_says_how_to_install_it():
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "django_cd"]
    with override_settings(INSTALLED_APPS=apps), pytest.raises(CommandError) as caught:
        flags("list")
    assert "pip install 'django-cd-deploy[flags]' and add 'waffle' to INSTALLED_APPS" in str(
        caught.value
    )


def test_import_from_stdin_as_a_rollback_with_json(monkeypatch: pytest.MonkeyPatch):
    import io

    put("a", "global")
    snapshot = json.loads(flags("export", "--json"))
    flags("off", "a")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(snapshot)))
    result = as_json("import", "-", "--yes", "--source", "rollback", "--by", "deployer")
    assert result["applied"] is True
    assert [(e["name"], e["old"]["state"], e["new"]["state"]) for e in result["diff"]] == [
        ("a", "off", "on")
    ]
    entry = FlagChange.objects.filter(name="a").first()
    assert (entry.source, entry.by) == ("rollback", "deployer")
