"""The template of testing instances: its checks (E140-E149, W140-W141) and the
environment each instance derives from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from django_cd import conf
from django_cd.instances import checks, config
from django_cd.instances.config import InstanceError, Template
from django_cd.management.commands.instance import duration

STAGING = {
    "settings": "settings.staging",
    "root": "/srv/notes/staging",
    "server": {"type": "gunicorn", "bind": "127.0.0.1:8001", "wsgi": "notes.wsgi"},
}
LIVE = {**STAGING, "root": "/srv/notes/live", "promote_from": "staging"}


def template(**instances: Any) -> dict[str, Any]:
    return {
        "settings": "settings.staging",
        "root": "/srv/notes/testing",
        "server": {"type": "gunicorn", "wsgi": "notes.wsgi", "workers": 1},
        "instances": {
            "ports": [8700, 8709],
            "database": "notes_{name}",
            "database_from": "staging",
            **instances,
        },
    }


def ids(testing: dict[str, Any], **envs: Any) -> list[str]:
    setting = {"ENVIRONMENTS": {"staging": STAGING, "live": LIVE, "testing": testing, **envs}}
    with override_settings(DJANGO_CD=setting):
        return [message.id for message in checks.check_instances()]


def test_a_good_template_has_no_problem_and_derives_an_environment() -> None:
    assert ids(template(url="https://{name}.testing.example.com/")) == []
    setting = {"ENVIRONMENTS": {"staging": STAGING, "testing": template()}}
    with override_settings(DJANGO_CD=setting):
        assert [p.id for p in conf.validate()] == []  # no bind needed on a template
        tpl = Template.of(conf.get_environment("testing"))
        env = tpl.environment("pr-12", 8703)
    assert env.name == "testing.pr-12"
    assert env.root == "/srv/notes/testing/pr-12"
    assert env.server.get("bind") == "127.0.0.1:8703"
    assert env.server.get("workers") == 1
    assert env.urls == ("http://127.0.0.1:8703/",)
    assert env.instances is None
    assert tpl.database("pr-12") == "notes_pr-12"


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        ({"colour": "red"}, "E140"),
        ({"database": None}, "E140"),
        ({"root": "relative/{name}"}, "E141"),
        ({"root": "/srv/testing/all"}, "E141"),
        ({"bind": "127.0.0.1:8000"}, "E142"),
        ({"ports": [9000, 8000]}, "E142"),
        ({"ports": None}, "E142"),
        ({"url": "ftp://{name}.example.com/"}, "E143"),
        ({"bind": "unix:{root}/app.sock", "ports": None}, "E143"),
        ({"database": "notes"}, "E144"),
        ({"database_variable": "not a name"}, "E144"),
        ({"database_from": "nowhere"}, "E145"),
        ({"database_from": "testing"}, "E145"),
        ({"database_from": "live"}, "E146"),
        ({"max_instances": 0}, "E147"),
        ({"max_database_mb": "big"}, "E147"),
        ({"scrub": "unbalanced 'quote"}, "E148"),
    ],
)
def test_each_problem_has_its_id(instances: dict[str, Any], expected: str) -> None:
    assert ids(template(**instances)) == [f"django_cd.{expected}"]


def test_copying_live_must_be_said_and_a_socket_needs_a_url() -> None:
    assert ids(template(database_from="live", copy_from_live=True)) == []
    assert (
        ids(template(bind="unix:{root}/shared/run/app.sock", url="https://{name}.t.example/"))
        == []
    )


def test_missing_keys_and_a_server_that_cannot_be_one_per_instance() -> None:
    assert ids({**template(), "instances": {"ports": [8700, 8701]}}) == ["django_cd.E140"]
    assert ids({**template(), "server": {"type": "none"}}) == ["django_cd.E149"]
    assert ids({**template(), "instances": "yes"}) == ["django_cd.E140"]


def test_warnings_for_an_unused_bind_and_ports_other_environments_use() -> None:
    bound = {**template(), "server": {**template()["server"], "bind": "127.0.0.1:8705"}}
    assert ids(bound) == ["django_cd.W140"]
    assert ids(template(ports=[8000, 8010])) == ["django_cd.W141"] * 2  # staging, live


def test_check_command_fails_on_a_bad_template() -> None:
    setting = {"ENVIRONMENTS": {"staging": STAGING, "testing": template(database="x")}}
    with override_settings(DJANGO_CD=setting), pytest.raises(SystemCheckError, match="E144"):
        call_command("check")


def test_template_of_refuses_an_invalid_template_and_a_plain_environment() -> None:
    setting = {"ENVIRONMENTS": {"staging": STAGING, "testing": template(max_instances=0)}}
    with override_settings(DJANGO_CD=setting):
        with pytest.raises(InstanceError, match="max_instances must be a whole number"):
            Template.of(conf.get_environment("testing"))
        with pytest.raises(InstanceError, match="'staging' is not a template"):
            Template.of(conf.get_environment("staging"))


@pytest.mark.parametrize("name", ["../x", "a/b", "Feature", "-x", "x.y", "", "a" * 41, "venvs"])
def test_names_with_path_characters_are_refused(name: str) -> None:
    setting = {"ENVIRONMENTS": {"staging": STAGING, "testing": template()}}
    with override_settings(DJANGO_CD=setting):
        tpl = Template.of(conf.get_environment("testing"))
        with pytest.raises(InstanceError, match="is not a valid instance name"):
            tpl.check_name(name)
        tpl.check_name("pr-123")


def test_durations() -> None:
    assert duration("7d") == 7 * 86400
    assert duration("12h") == 12 * 3600
    with pytest.raises(CommandError, match="is not a duration"):
        duration("a week")


def test_every_instance_check_id_is_documented_once() -> None:
    source = (Path(config.__file__)).read_text()
    used = set(re.findall(r'"(?:django_cd\.)?([EW]14\d)"', source))
    doc = (Path(__file__).parents[2] / "docs" / "checks.md").read_text()
    headings = re.findall(r"^## django_cd\.([EW]14\d)", doc, re.MULTILINE)
    assert len(headings) == len(set(headings))
    assert used == set(headings)
    assert "E140-E149 and W140-W149" in doc
