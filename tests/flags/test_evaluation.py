"""flags.is_active: statuses, conditions, inheritance, schedules, unknown names, and cost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from waffle.models import Flag, Sample, Switch

from django_cd import flags
from django_cd.flags import evaluation

from .support import CountingCache, put, request

pytestmark = pytest.mark.django_db


def test_statuses_disabled_global_selective():
    put("dark")
    put("bright", "global")
    put("staff_only", "selective", [{"kind": "user", "value": ["staff"]}])
    staff = User(username="s", is_staff=True)
    assert not flags.is_active("dark", request())
    assert flags.is_active("bright", request())
    assert flags.is_active("staff_only", request(staff))
    assert not flags.is_active("staff_only", request())


def test_an_exclude_match_wins_over_an_include():
    put("beta", "selective", [
        {"kind": "ip", "value": ["10.0.0.0/8"]},
        {"kind": "ip", "value": ["10.9.0.0/16"], "exclude": True},
    ])  # fmt: skip
    assert flags.is_active("beta", request(ip="10.1.1.1"))
    assert not flags.is_active("beta", request(ip="10.9.1.1"))


def test_environment_condition_follows_the_settings_module():
    put("stage_only", "selective", [{"kind": "environment", "value": ["staging"]}])
    # tests.settings is the 'settings' of the 'staging' environment in tests/settings.py.
    assert flags.is_active("stage_only", request())
    live = {"ENVIRONMENTS": {"live": {"settings": "tests.settings", "root": "/srv/x/live"}}}
    with override_settings(DJANGO_CD=live):
        assert not flags.is_active("stage_only", request())


def test_child_inherits_from_parent():
    put("shop", "disabled")
    put("shop:checkout", "inherit")
    assert not flags.is_active("shop:checkout")
    put("shop", "global")
    assert flags.is_active("shop:checkout")


def test_schedule_on_after_and_off_after():
    now = timezone.now()
    put("later", "global", on_after=(now + timedelta(hours=1)).isoformat())
    put("over", "global", off_after=(now - timedelta(hours=1)).isoformat())
    put("window", "global", on_after=(now - timedelta(hours=1)).isoformat(),
        off_after=(now + timedelta(hours=1)).isoformat())  # fmt: skip
    assert not flags.is_active("later")
    assert not flags.is_active("over")
    assert flags.is_active("window")


def test_waffle_switches_samples_and_waffle_made_flags():
    Switch.objects.create(name="maintenance", active=True)
    Sample.objects.create(name="never", percent=0)
    Sample.objects.create(name="always", percent=100)
    group = Group.objects.create(name="testers")
    flag = Flag.objects.create(name="waffle_made", everyone=None, superusers=False)
    flag.groups.add(group)
    tester = User.objects.create_user("t")
    tester.groups.add(group)
    assert flags.is_active("maintenance")
    assert not flags.is_active("never")
    assert flags.is_active("always")
    assert flags.is_active("waffle_made", request(tester))
    assert not flags.is_active("waffle_made", request(User.objects.create_user("u")))


def test_percentage_of_users_is_sticky_per_user(user: User):
    put("rollout", "selective", [{"kind": "percent", "value": 50}])
    users = [User.objects.create_user(f"user{i}") for i in range(40)]
    first = [flags.is_active("rollout", request(u)) for u in users]
    again = [flags.is_active("rollout", request(u)) for u in users]
    assert first == again
    assert 5 < sum(first) < 35


def test_unknown_flag_names_the_closest_ones():
    put("new_checkout")
    with pytest.raises(flags.UnknownFlag) as caught:
        flags.is_active("new_chekout")
    assert "Unknown flag 'new_chekout'. Did you mean new_checkout?" in str(caught.value)


def test_declared_flag_not_yet_reconciled_is_off():
    with override_settings(DJANGO_CD={"FLAGS": {"coming": {"kind": "release"}}}):
        assert flags.is_active("coming") is False


def test_steady_state_costs_no_query_and_one_cache_call_per_request(monkeypatch):
    for i in range(20):
        put(f"f{i}", "selective" if i % 2 else "global", [{"kind": "host", "value": ["x"]}])
    flags.is_active("f0", request())  # warm this process
    counting = CountingCache()
    monkeypatch.setattr(evaluation, "default_cache", counting)
    page = request()
    with CaptureQueriesContext(connection) as queries:
        results = [flags.is_active(f"f{i}", page) for i in range(20)]
    assert len(queries) == 0
    assert counting.calls == ["get"]
    assert results == [i % 2 == 0 for i in range(20)]


def test_a_change_reaches_the_next_request():
    put("toggle")
    assert not flags.is_active("toggle", request())
    put("toggle", "global")
    assert flags.is_active("toggle", request())


def test_another_process_reloads_from_the_cache_not_the_database():
    put("shared", "global")
    flags.is_active("shared", request())  # the snapshot is now in the cache
    evaluation._process = None  # as a fresh worker process
    with CaptureQueriesContext(connection) as queries:
        assert flags.is_active("shared", request())
    assert len(queries) == 0
