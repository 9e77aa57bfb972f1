"""System checks of the flags layer: E100, E101, W100, W101."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_cd.flags.checks import check_cache, check_declarations


def ids(flags: Any) -> list[str]:
    with override_settings(DJANGO_CD={"FLAGS": flags}):
        return [message.id for message in check_declarations()]


def test_good_declarations_pass():
    assert (
        ids({"a": {"description": "A", "owner": "me", "kind": "ops", "expires": "2099-01-01"}})
        == []
    )


def test_malformed_declarations_are_e101():
    assert ids(["a"]) == ["django_cd.E101"]
    assert ids({"a": {"kind": "forever"}}) == ["django_cd.E101"]
    assert ids({"a": {"expires": "next week"}}) == ["django_cd.E101"]
    assert ids({"a": {"colour": "red"}}) == ["django_cd.E101"]
    assert ids({"a": "release"}) == ["django_cd.E101"]


def test_expired_release_flag_warns_w100_other_kinds_do_not():
    with override_settings(DJANGO_CD={"FLAGS": {"old": {"kind": "release", "owner": "shop",
                                                        "expires": "2020-01-01"}}}):  # fmt: skip
        [warning] = check_declarations()
    assert warning.id == "django_cd.W100"
    assert warning.msg == "Release flag 'old' expired on 2020-01-01 (owner: shop)."
    assert ids({"old": {"kind": "ops", "expires": "2020-01-01"}}) == []


def test_declared_flags_without_waffle_is_e100():
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "django_cd"]
    with override_settings(INSTALLED_APPS=apps, DJANGO_CD={"FLAGS": {"a": {}}}):
        assert [m.id for m in check_declarations()] == ["django_cd.E100"]


def test_process_local_cache_warns_w101_shared_cache_does_not(tmp_path):
    [warning] = check_cache()  # tests.settings: the default LocMemCache
    assert warning.id == "django_cd.W101"
    files = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                         "LOCATION": str(tmp_path)}}  # fmt: skip
    with override_settings(CACHES=files):
        assert check_cache() == []


@pytest.mark.django_db  # Django 6.1's check command reads the database
def test_check_command_fails_on_bad_declarations():
    bad = {"FLAGS": {"a": {"kind": "forever"}}}
    with override_settings(DJANGO_CD=bad), pytest.raises(SystemCheckError, match=r"E101"):
        call_command("check")
