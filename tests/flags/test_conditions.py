"""Conditions: validation messages, the predicates, the sticky percentage, words."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import override_settings

from django_cd.flags import conditions as cond
from django_cd.flags.errors import FlagError


def user(**attrs: object) -> SimpleNamespace:
    base = {
        "pk": 7, "is_authenticated": True, "is_staff": False, "is_superuser": False,
        "is_active": True, "email": "ada@example.com", "get_username": lambda: "ada",
    }  # fmt: skip
    return SimpleNamespace(**{**base, **attrs})


def matches(condition: dict[str, object], **ctx: object) -> bool:
    valid = cond.validate(condition)
    return cond.compile_condition("f", valid)(cond.Context(**ctx))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"kind": "ip", "value": ["10.0.0.300/8"]}, "'10.0.0.300/8' is not an IP network"),
        ({"kind": "percent", "value": 101}, "Percent 101 is outside 0-100"),
        ({"kind": "percent", "value": -1}, "Percent -1 is outside 0-100"),
        ({"kind": "percent", "value": "ten"}, "Percent ten is not a number"),
        ({"kind": "colour", "value": ["red"]}, "Unknown condition kind 'colour'"),
        ({"kind": "user", "value": ["admin"]}, "Unknown user attribute(s) admin"),
        ({"kind": "host", "value": []}, "needs a non-empty list"),
        ({"kind": "host", "value": ["a"], "weight": 2}, "unknown key(s) weight"),
    ],
)
def test_bad_conditions_are_refused_with_the_fix(condition: dict[str, object], message: str):
    with pytest.raises(FlagError) as caught:
        cond.validate(condition)
    assert message in str(caught.value)


def test_ip_networks_and_internal_ips():
    condition = {"kind": "ip", "value": ["10.0.0.0/8", "INTERNAL_IPS"]}
    with override_settings(INTERNAL_IPS=["192.168.1.5"]):
        assert matches(condition, ip="10.1.2.3")
        assert matches(condition, ip="192.168.1.5")
        assert not matches(condition, ip="192.168.1.6")
        assert not matches(condition, ip="2001:db8::1")
        assert not matches(condition, ip=None)


def test_environment_host_and_user_conditions():
    assert matches({"kind": "environment", "value": ["staging"]}, environment="staging")
    assert not matches({"kind": "environment", "value": ["staging"]}, environment="live")
    assert matches({"kind": "host", "value": ["Beta.Example.com"]}, host="beta.example.com")
    assert matches({"kind": "user", "value": ["staff"]}, user=user(is_staff=True))
    assert not matches({"kind": "user", "value": ["staff", "superuser"]}, user=user())
    assert matches({"kind": "email", "value": ["ADA@example.com"]}, user=user())
    assert matches({"kind": "username", "value": ["ada"]}, user=user())
    assert not matches({"kind": "username", "value": ["ada"]}, user=user(is_authenticated=False))


def test_percentage_is_sticky_grows_monotonically_and_differs_per_flag():
    ids = range(2000)
    for flag in ("checkout", "search"):
        at10 = {i for i in ids if cond.bucket(flag, i) < 10}
        at30 = {i for i in ids if cond.bucket(flag, i) < 30}
        assert at10 < at30  # raising the share only adds users
        assert 140 < len(at10) < 260  # about 10 % of 2000
        assert at10 == {i for i in ids if cond.bucket(flag, i) < 10}  # the same every time
    checkout = {i for i in ids if cond.bucket("checkout", i) < 10}
    search = {i for i in ids if cond.bucket("search", i) < 10}
    assert len(checkout & search) < 60  # not the same 10 % for every flag (random overlap ~20)


def test_percentage_never_includes_anonymous_users():
    condition = {"kind": "percent", "value": 100}
    assert not matches(condition, user=None)
    assert not matches(condition, user=user(is_authenticated=False))
    assert matches(condition, user=user())


def test_conditions_in_words():
    assert cond.describe({"kind": "percent", "value": 12.5}) == "12.5% of users"
    assert (
        cond.describe({"kind": "environment", "value": ["staging", "live"], "exclude": False})
        == "environment is staging or live"
    )
    assert cond.describe({"kind": "ip", "value": ["10.0.0.0/8"], "exclude": True}) == (
        "not when IP in 10.0.0.0/8"
    )
