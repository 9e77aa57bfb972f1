"""Changes are audited; bad input changes nothing; snapshot, restore and import files."""

from __future__ import annotations

import json

import pytest

from django_cd import flags
from django_cd.flags import changes, transfer
from django_cd.flags import state as flag_state
from django_cd.flags.errors import FlagError
from django_cd.models import FlagChange

from .support import put

pytestmark = pytest.mark.django_db


def test_every_change_records_who_when_old_new_reason():
    put("beta")
    changes.turn_on("beta", by="grace", reason="launch", source="command")
    entry = FlagChange.objects.filter(name="beta").first()
    assert entry is not None
    assert (entry.by, entry.reason, entry.source) == ("grace", "launch", "command")
    assert (entry.old["state"], entry.new["state"]) == ("off", "on")
    assert entry.release == ""  # tests do not run from a release directory


def test_no_change_no_entry():
    put("beta", "global")
    before = FlagChange.objects.count()
    assert changes.turn_on("beta", by="grace") is None
    assert FlagChange.objects.count() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda: changes.set_percent("beta", 150, by="x"), "Percent 150 is outside 0-100"),
        (
            lambda: changes.set_conditions(
                "beta", [{"kind": "ip", "value": ["10.0.0/33"]}], by="x"
            ),
            "is not an IP network",
        ),
        (
            lambda: changes.set_conditions(
                "beta", [], on_after="2026-12-02T00:00Z", off_after="2026-12-01T00:00Z", by="x"
            ),
            "the schedule ends (2026-12-01T00:00:00+00:00) before it starts",
        ),
        (lambda: changes.set_conditions("beta", [], inherit=True, by="x"), "parent:child"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(change, message):
    put("beta")
    before = (flag_state.read("beta"), FlagChange.objects.count())
    with pytest.raises(FlagError) as caught:
        change()
    assert message in str(caught.value)
    assert (flag_state.read("beta"), FlagChange.objects.count()) == before


def test_snapshot_is_json_and_restore_puts_states_back_audited():
    put("a", "global")
    put("b", "selective", [{"kind": "environment", "value": ["staging"]}])
    taken = flags.snapshot()
    assert json.loads(json.dumps(taken)) == taken
    assert [f["name"] for f in taken["flags"]] == ["a", "b"]
    changes.turn_off("a", by="x")
    changes.turn_on("b", by="x")
    applied = flags.restore(taken, "deployer", "rollback to 0007")
    assert [e["name"] for e in applied] == ["a", "b"]
    assert flag_state.read("a")["state"] == "on"
    assert flag_state.read("b")["conditions"][0]["value"] == ["staging"]
    entry = FlagChange.objects.filter(name="a").first()
    assert (entry.source, entry.by, entry.reason) == ("rollback", "deployer", "rollback to 0007")


def test_an_import_of_the_wrong_shape_is_refused_whole():
    put("a")
    data = {"format": 1, "flags": [
        {"name": "a", "status": "global", "conditions": []},
        {"name": "b", "status": "sometimes"},
        {"name": "c", "status": "selective", "conditions": [{"kind": "percent", "value": 200}]},
    ]}  # fmt: skip
    with pytest.raises(FlagError) as caught:
        transfer.restore(data, "x", "y")
    text = str(caught.value)
    assert "flags[1]: Flag 'b': status 'sometimes'" in text
    assert "flags[2]: Flag 'c': Percent 200 is outside 0-100" in text
    assert flag_state.read("a")["state"] == "off"
    assert flag_state.read("b") is None
    for bad in ([], {"flags": {}}, {"format": 2, "flags": []}):
        with pytest.raises(FlagError):
            transfer.load(bad)


def test_diff_lists_only_what_differs_in_words():
    put("a", "global")
    put("b")
    target = [
        flag_state.make("a", "flag", "global", []),
        flag_state.make("b", "flag", "selective", [{"kind": "percent", "value": 10.0,
                                                    "exclude": False}]),
    ]  # fmt: skip
    assert transfer.diff_lines(transfer.diff(target)) == ["b: off -> conditional (10% of users)"]
