from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_cd import conf
from django_cd.checks import check_settings

GOOD_ENV = {"settings": "settings.staging", "root": "/srv/app/staging"}
GUNICORN_MIN = {"type": "gunicorn", "bind": "127.0.0.1:8001", "wsgi": "app.wsgi"}


def ids(config: object) -> list[str]:
    with override_settings(DJANGO_CD=config):
        return [message.id for message in check_settings()]


def messages(config: object) -> list[Error]:
    with override_settings(DJANGO_CD=config):
        return check_settings()


def test_valid_config_has_no_errors():
    config = {
        "ENVIRONMENTS": {
            "staging": {**GOOD_ENV, "urls": ["https://staging.example.com/"]},
            "live": {
                "settings": "settings.live",
                "root": "/srv/app/live",
                "hosts": ["deploy@web1.example.com", "deploy@web2.example.com:2222"],
                "server": {
                    "type": "uwsgi",
                    "bind": "127.0.0.1:8002",
                    "wsgi": "myproject.wsgi:application",
                    "fifo": "/srv/app/live/shared/uwsgi.fifo",
                    "workers": 4,
                    "timeout": 12.5,
                    "args": "--harakiri 30",
                },
                "backup": "always",
                "promote_from": "staging",
                "required_pipelines": ["unit", "functional"],
            },
        },
        "KEEP_RELEASES": 3,
    }
    assert ids(config) == []


def test_missing_setting_is_valid():
    with override_settings():
        from django.conf import settings

        del settings.DJANGO_CD
        assert check_settings() == []
        assert conf.get_config()["KEEP_RELEASES"] == 5


def test_not_a_dict():
    [error] = messages(["staging"])
    assert error.id == "django_cd.E001"
    assert error.msg == "DJANGO_CD must be a dict, not list."


def test_unknown_key():
    [error] = messages({"ENVIRONMENT": {}})
    assert error.id == "django_cd.E002"
    assert error.msg == "DJANGO_CD has an unknown key 'ENVIRONMENT'."
    assert "ENVIRONMENTS" in error.hint


@pytest.mark.parametrize("keep", [1, "5", True, None])
def test_keep_releases(keep):
    assert ids({"KEEP_RELEASES": keep}) == ["django_cd.E003"]


def test_pipelines_must_be_names():
    assert ids({"PIPELINES": []}) == ["django_cd.E004"]
    assert ids({"PIPELINES": "unit"}) == ["django_cd.E004"]


def test_default_pipeline_must_be_declared():
    [error] = messages({"PIPELINES": ["unit"], "DEFAULT_PIPELINE": "fast"})
    assert error.id == "django_cd.E005"
    assert (
        error.msg == "DJANGO_CD['DEFAULT_PIPELINE'] 'fast' is not one of DJANGO_CD['PIPELINES']."
    )


@pytest.mark.parametrize(
    "config",
    [
        {"ENVIRONMENTS": []},
        {"ENVIRONMENTS": {"staging": "settings.staging"}},
        {"FIRST_PARTY_APPS": "notes"},
        {"RESULTS_DIR": ""},
        {"REPOSITORY": 3},
    ],
)
def test_wrong_types(config):
    assert ids(config) == ["django_cd.E006"]


def test_environment_name():
    [error] = messages({"ENVIRONMENTS": {"Staging Env": GOOD_ENV}})
    assert error.id == "django_cd.E007"
    assert error.msg == "Environment 'Staging Env': the name is not valid."


def test_duplicate_hosts_and_shared_roots():
    errors = messages(
        {
            "ENVIRONMENTS": {
                "staging": {**GOOD_ENV, "hosts": ["deploy@web1", "deploy@web1"]},
                "qa": {"settings": "settings.qa", "root": "/srv/qa"},
                "live": {"settings": "settings.live", "root": "/srv/qa"},
            }
        }
    )
    # One id, one meaning: E070 a host listed twice, E008 a root shared by two environments.
    assert [e.id for e in errors] == ["django_cd.E070", "django_cd.E008"]
    assert errors[0].msg == "Environment 'staging' lists host(s) deploy@web1 more than once."
    assert errors[1].msg == (
        "Environment 'live' shares root '/srv/qa' on host 'local' with environment 'qa'."
    )


def test_unknown_environment_field():
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "host": "web1"}}})
    assert error.id == "django_cd.E009"
    assert error.msg == "Environment 'staging' has an unknown field 'host'."
    assert "hosts" in error.hint


def test_required_fields():
    errors = messages({"ENVIRONMENTS": {"staging": {}}})
    assert [e.msg for e in errors] == [
        "Environment 'staging' is missing the required field 'settings'.",
        "Environment 'staging' is missing the required field 'root'.",
    ]
    assert {e.id for e in errors} == {"django_cd.E010"}


def test_relative_root():
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "root": "srv/app"}}})
    assert error.id == "django_cd.E011"
    assert error.msg == "Environment 'staging': root 'srv/app' is not an absolute path."


def test_empty_hosts():
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "hosts": []}}})
    assert error.id == "django_cd.E012"
    assert error.msg == "Environment 'staging' has an empty hosts list."


def test_bad_host_and_settings_types():
    errors = messages(
        {"ENVIRONMENTS": {"staging": {**GOOD_ENV, "settings": "settings/live.py", "hosts": [3]}}}
    )
    assert [e.id for e in errors] == ["django_cd.E006", "django_cd.E006"]


def test_bad_url():
    [error] = messages(
        {"ENVIRONMENTS": {"staging": {**GOOD_ENV, "urls": ["staging.example.com"]}}}
    )
    assert error.id == "django_cd.E013"
    assert error.msg == "Environment 'staging': 'staging.example.com' is not an http(s) URL."


@pytest.mark.parametrize(
    ("server", "check_id", "msg"),
    [
        ({"type": "apache"}, "E014", "'server' must be a dict whose 'type' is one of"),
        ("gunicorn", "E014", "'server' must be a dict whose 'type' is one of"),
        (
            {**GUNICORN_MIN, "fifo": "/x"},
            "E071",
            "server type 'gunicorn' does not take 'fifo'.",
        ),
        ({"type": "command"}, "E072", "server type 'command' needs a 'reload' command string."),
    ],
)
def test_bad_server(server, check_id, msg):
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "server": server}}})
    assert error.id == f"django_cd.{check_id}"
    assert msg in error.msg


GUNICORN = {"type": "gunicorn", "bind": "127.0.0.1:8001", "wsgi": "myproject.wsgi"}


@pytest.mark.parametrize(
    ("server", "check_id", "msg"),
    [
        ({"type": "gunicorn"}, "E058", "server type 'gunicorn' needs 'bind' and 'wsgi'."),
        ({**GUNICORN, "timeout": "abc"}, "E052", "server 'timeout' must be a positive number"),
        ({**GUNICORN, "timeout": 0}, "E052", "of seconds, not 0."),
        ({**GUNICORN, "timeout": True}, "E052", "of seconds, not True."),
        ({**GUNICORN, "workers": "2"}, "E053", "a whole number of at least 1, not '2'."),
        ({**GUNICORN, "workers": 0}, "E053", "a whole number of at least 1, not 0."),
        ({**GUNICORN, "bind": "8001"}, "E054", "server 'bind' '8001' is not 'host:port'"),
        ({**GUNICORN, "bind": "127.0.0.1:99999"}, "E054", "(port 1-65535)."),
        ({**GUNICORN, "wsgi": "my-project/wsgi.py"}, "E055", "is not a module path."),
        ({**GUNICORN, "args": "--name 'unclosed"}, "E056", "server 'args' must be a command"),
        (
            {"type": "command", "reload": "systemctl reload 'app"},
            "E056",
            "server 'reload' must be a command line string with balanced quotes.",
        ),
        (
            {"type": "uwsgi", "bind": "127.0.0.1:1", "wsgi": "a.wsgi", "fifo": "run/x.fifo"},
            "E057",
            "server 'fifo' 'run/x.fifo' is not an absolute path.",
        ),
    ],
)
def test_server_values_are_checked_before_any_deploy(server, check_id, msg):
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "server": server}}})
    assert error.id == f"django_cd.{check_id}"
    assert error.msg.startswith("Environment 'staging': ")
    assert msg in error.msg
    assert error.hint


def test_strategy_and_backup():
    errors = messages(
        {"ENVIRONMENTS": {"staging": {**GOOD_ENV, "strategy": "blue", "backup": "sometimes"}}}
    )
    assert [e.id for e in errors] == ["django_cd.E015", "django_cd.E016"]
    assert errors[0].hint == "Use one of parallel, rolling, canary."


@pytest.mark.parametrize("level", [-1, 10, "fast", 1.5, True])
def test_backup_compression_is_a_level(level):
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "backup_compression": level}}})
    assert error.id == "django_cd.E019"
    assert error.msg == (
        f"Environment 'staging': backup_compression {level!r} is not a compression level."
    )
    assert not messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "backup_compression": 1}}})


def test_required_pipeline_must_be_declared():
    [error] = messages({"ENVIRONMENTS": {"staging": {**GOOD_ENV, "required_pipelines": ["e2e"]}}})
    assert error.id == "django_cd.E017"


def test_promote_from_must_exist():
    [error] = messages({"ENVIRONMENTS": {"live": {**GOOD_ENV, "promote_from": "qa"}}})
    assert error.id == "django_cd.E018"
    assert error.msg == "Environment 'live' promotes from 'qa', which is not an environment."


@pytest.mark.django_db  # Django 6.1's check command reads the database
def test_manage_check_fails_on_bad_config():
    with (
        override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": {"root": "x"}}}),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check")
    assert "django_cd.E010" in str(raised.value)
    assert "django_cd.E011" in str(raised.value)


def test_environment_objects():
    config = {
        "ENVIRONMENTS": {
            "staging": {
                **GOOD_ENV,
                "server": {"type": "gunicorn", "bind": "127.0.0.1:8001", "wsgi": "app.wsgi"},
                "urls": ["http://127.0.0.1:8001/"],
            }
        }
    }
    with override_settings(DJANGO_CD=config):
        env = conf.get_environment("staging")
    assert env.name == "staging"
    assert env.hosts == ("local",)
    assert env.is_local
    assert env.server.type == "gunicorn"
    assert env.server.get("bind") == "127.0.0.1:8001"
    assert env.url == "http://127.0.0.1:8001/"
    assert env.strategy == "parallel"


def test_unknown_environment_names_known_ones():
    with (
        override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": GOOD_ENV}}),
        pytest.raises(conf.UnknownEnvironment) as raised,
    ):
        conf.get_environment("prod")
    assert str(raised.value) == (
        "Unknown environment 'prod'. Known environments: staging. "
        "Define it in DJANGO_CD['ENVIRONMENTS'] or pick a known one."
    )


def test_invalid_config_refuses_environments():
    with (
        override_settings(DJANGO_CD={"ENVIRONMENTS": {"staging": {"root": "/x"}}}),
        pytest.raises(ImproperlyConfigured, match=r"django_cd\.E010"),
    ):
        conf.environments()


def test_cache_follows_override_settings():
    with override_settings(DJANGO_CD={"KEEP_RELEASES": 9}):
        assert conf.get_config()["KEEP_RELEASES"] == 9
    assert conf.get_config()["KEEP_RELEASES"] == 5


def reported_ids() -> dict[str, int]:
    """Every check id written in any module of django_cd, and in how many modules."""
    package = Path(conf.__file__).parent
    found: dict[str, int] = {}
    for module in sorted(package.rglob("*.py")):
        for match in set(re.findall(r'"(?:django_cd\.)?([EW]\d{3})"', module.read_text())):
            found[match] = found.get(match, 0) + 1
    return found


def test_every_check_id_is_documented_once():
    used = reported_ids()
    doc = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    headings = re.findall(r"^## django_cd\.([EW]\d{3})", doc, re.MULTILINE)
    assert len(headings) == len(set(headings)), "an id is documented twice"
    assert set(used) - set(headings) == set(), "reported but not documented"
    # The modules of every layer that reports ids are read (settings, testing,
    # migration versions, deploys, gates).
    assert {"E001", "E020", "E030", "E050", "E070", "E180", "W130"} <= set(used)


def test_each_check_id_belongs_to_one_module():
    """One id, one meaning: an id is reported by one module only (one layer owns each
    range), so two layers never pick the same number. A module may report one id from
    more than one place when the problem is the same."""
    assert {check_id: n for check_id, n in reported_ids().items() if n > 1} == {}


def test_smoke_checks_are_imported_at_check_time():
    errors = messages(
        {
            "ENVIRONMENTS": {
                "staging": {
                    **GOOD_ENV,
                    "smoke_checks": [
                        "django_cd.pipeline.smoke.check_release",
                        "django_cd.pipeline.smoke.no_such_check",
                        "django_cd.pipeline.smoke.RELEASE_HEADER",
                    ],
                }
            }
        }
    )
    assert [e.id for e in errors] == ["django_cd.E073", "django_cd.E074"]
    assert errors[0].msg.startswith(
        "Environment 'staging': smoke check 'django_cd.pipeline.smoke.no_such_check' "
        "cannot be imported ("
    )
    assert errors[1].msg == (
        "Environment 'staging': smoke check 'django_cd.pipeline.smoke.RELEASE_HEADER' "
        "is not callable."
    )
    with (
        override_settings(
            DJANGO_CD={"ENVIRONMENTS": {"staging": {**GOOD_ENV, "smoke_checks": ["nosuch.x"]}}}
        ),
        pytest.raises(SystemCheckError, match=r"django_cd\.E073"),
    ):
        call_command("check")


def test_strategies_are_enforced_so_they_no_longer_warn():
    config = {
        "ENVIRONMENTS": {
            "staging": {
                **GOOD_ENV,
                "strategy": "canary",
                "rollout": {"canary": 2, "bake": 30},
                # Enforced since issue 12: no longer W071 (retired).
                "notifications": [{"type": "mail", "to": ["ops@example.com"]}],
            },
            "qa": {"settings": "settings.qa", "root": "/srv/qa", "strategy": "rolling"},
        }
    }
    # W070 (strategy not enforced) is retired with issue 14.
    assert messages(config) == []
    with override_settings(DJANGO_CD=config):
        staging = conf.get_environment("staging")
        assert (staging.strategy, staging.rollout) == ("canary", conf.Rollout(1, 2, 30))
        assert conf.get_environment("qa").rollout == conf.Rollout()


def test_ci_identity_variables_type():
    [error] = messages({"CI_IDENTITY_VARIABLES": "GITHUB_ACTOR"})
    assert error.id == "django_cd.E006"
    assert error.msg == "DJANGO_CD['CI_IDENTITY_VARIABLES'] must be a list of variable names."


FLEET_HOSTS = ["deploy@web1", {"host": "deploy@web2:2222", "server": {"bind": "0.0.0.0:8001"}}]


@pytest.mark.parametrize(
    ("fields", "check_id", "message"),
    [
        ({"hosts": ["web1"]}, "E180", "'web1' is not a host: write 'user@host'"),
        ({"hosts": [{"host": "deploy@web1", "key_file": "id"}]}, "E180", "'key_file' must be"),
        (
            {"hosts": [{"host": "deploy@web1", "server": {"wsgi": "x.wsgi"}}]},
            "E180",
            "the server option(s) 'wsgi' cannot be set per host",
        ),
        ({"hosts": ["deploy@web1", "deploy@web1:22"]}, "E180", "deploy@web1:22 are listed twice"),
        ({"hosts": ["local", "deploy@web1"]}, "E180", "'local' is listed with SSH hosts"),
        ({"hosts": FLEET_HOSTS, "hosts_file": "/etc/hosts.txt"}, "E181", "more than one place"),
        ({"hosts_command": ""}, "E181", "'hosts_command' must be a non-empty string"),
        ({"hosts": FLEET_HOSTS, "migration_host": "deploy@web3:22"}, "E182", "is not one of"),
        ({"hosts": FLEET_HOSTS, "host_defaults": {"python": ""}}, "E183", "'python' must be"),
        ({"hosts": FLEET_HOSTS, "host_defaults": {"host": "x@y"}}, "E183", "(no 'host')"),
        ({"rollout": {"batch": "150%"}}, "E184", "batch '150%' is neither"),
        ({"rollout": {"batch": 0}}, "E184", "batch 0 is neither"),
        ({"rollout": {"canary": 0}}, "E184", "canary 0 is not"),
        ({"rollout": {"bake": -1}}, "E184", "bake -1 is not"),
        ({"rollout": {"wave": 2}}, "E184", "unknown key(s) 'wave'"),
    ],
)
def test_fleet_settings_name_what_is_wrong(fields, check_id, message):
    [error] = messages({"ENVIRONMENTS": {"live": {**GOOD_ENV, **fields}}})
    assert error.id == f"django_cd.{check_id}"
    assert message in error.msg


def test_a_fleet_environment_builds_with_its_hosts_and_rollout():
    config = {
        "ENVIRONMENTS": {
            "live": {
                **GOOD_ENV,
                "hosts": FLEET_HOSTS,
                "host_defaults": {"key_file": "~/.ssh/deploy"},
                "migration_host": "deploy@web2:2222",
                "strategy": "rolling",
                "rollout": {"batch": "50%"},
            }
        }
    }
    assert messages(config) == []
    with override_settings(DJANGO_CD=config):
        live = conf.get_environment("live")
    assert not live.is_local
    assert live.rollout.batch_size(8) == 4
    assert live.rollout.batch_size(1) == 1
    assert conf.Rollout(batch=3).batch_size(8) == 3
