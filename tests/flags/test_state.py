"""Flag states: validation of every type, and switches and samples written through waffle."""

from __future__ import annotations

import pytest
from waffle.models import Sample, Switch

from django_cd.flags import changes
from django_cd.flags import state as flag_state
from django_cd.flags.errors import FlagError

from .support import put

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("flag", "A flag state must be an object, not str."),
        ({"status": "global"}, "needs a 'name' of 1 to 100 characters"),
        ({"name": "x" * 101, "status": "global"}, "needs a 'name' of 1 to 100 characters"),
        ({"name": "a", "status": "global", "owner": "me"}, "Flag 'a': unknown key(s) owner."),
        ({"name": "a", "type": "toggle", "status": "global"}, "type 'toggle' is not one of"),
        ({"name": "a", "status": "global", "conditions": {}}, "'conditions' must be a list."),
        ({"name": "a", "status": "global", "on_after": "soon"}, "'soon' is not a time"),
        ({"name": "a", "status": "global", "on_after": 5}, "5 is not a time"),
        ({"name": "s", "type": "switch", "status": "selective"}, "a switch is only on"),
        (
            {"name": "s", "type": "switch", "status": "global", "off_after": "2030-01-01"},
            "a switch has no schedule",
        ),
        ({"name": "p", "type": "sample", "status": "selective"}, "exactly one percent"),
    ],
)
def test_bad_states_are_refused(raw: object, message: str):
    with pytest.raises(FlagError) as caught:
        flag_state.validate(raw)
    assert message in str(caught.value)


def test_naive_times_are_utc_and_empty_is_none():
    valid = flag_state.validate(
        {"name": "a", "status": "global", "on_after": "2030-01-01T09:00", "off_after": ""}
    )
    assert (valid["on_after"], valid["off_after"]) == ("2030-01-01T09:00:00+00:00", None)


def test_switches_and_samples_are_written_to_waffle():
    put("maintenance", "global", type_="switch")
    assert Switch.objects.get(name="maintenance").active is True
    changes.turn_off("maintenance", by="x")
    assert Switch.objects.get(name="maintenance").active is False
    put("sampled", "selective", [{"kind": "percent", "value": 30}], type_="sample")
    changes.set_percent("sampled", 45, by="x")
    assert float(Sample.objects.get(name="sampled").percent) == 45.0
    assert flag_state.read("sampled")["state"] == "conditional"
    with pytest.raises(FlagError, match="is a switch"):
        changes.set_percent("maintenance", 10, by="x")
    assert changes.history("sampled")[0]["new"]["conditions"][0]["value"] == 45.0
