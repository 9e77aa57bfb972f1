from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_cd import env

SECRET = "s" * 60


def spec():
    return {
        "DJANGO_SECRET_KEY": env.secret(min_length=50),
        "DATABASE_URL": env.database_url(),
        "DJANGO_ALLOWED_HOSTS": env.list(),
        "SENTRY_DSN": env.string(default=""),
        "WEB_CONCURRENCY": env.integer(default=2, minimum=1),
        "DJANGO_DEBUG": env.boolean(default=False),
    }


def test_reads_typed_values():
    values = env.read(
        spec(),
        {
            "DJANGO_SECRET_KEY": SECRET,
            "DATABASE_URL": "postgres://app:pw@db.internal:5433/notes",
            "DJANGO_ALLOWED_HOSTS": "example.com, www.example.com,",
            "WEB_CONCURRENCY": "4",
            "DJANGO_DEBUG": "on",
        },
    )
    assert values["DJANGO_SECRET_KEY"] == SECRET
    assert values["DATABASE_URL"]["ENGINE"] == "django.db.backends.postgresql"
    assert values["DATABASE_URL"]["NAME"] == "notes"
    assert values["DATABASE_URL"]["PORT"] == 5433
    assert values["DJANGO_ALLOWED_HOSTS"] == ["example.com", "www.example.com"]
    assert values["SENTRY_DSN"] == ""
    assert values["WEB_CONCURRENCY"] == 4
    assert values["DJANGO_DEBUG"] is True


def test_one_error_names_every_missing_variable():
    with pytest.raises(ImproperlyConfigured) as raised:
        env.read(spec(), {})
    assert str(raised.value) == (
        "3 setting(s) missing or malformed:\n"
        "  - DJANGO_SECRET_KEY is not set; it should hold a random secret of at least "
        "50 characters.\n"
        "  - DATABASE_URL is not set; it should hold a database URL such as "
        "postgres://user:password@host:5432/name.\n"
        "  - DJANGO_ALLOWED_HOSTS is not set; it should hold a comma-separated list.\n"
        "Set them in the environment or the .env file named by DJANGO_ENV_FILE."
    )


def test_malformed_values_are_named_but_never_printed():
    bad = {
        "DJANGO_SECRET_KEY": "short-but-secret-value",
        "DATABASE_URL": "postgress://app:hunter2@db/notes",
        "DJANGO_ALLOWED_HOSTS": " , ",
        "WEB_CONCURRENCY": "zero-hunter2",
        "DJANGO_DEBUG": "maybe-hunter2",
    }
    with pytest.raises(ImproperlyConfigured) as raised:
        env.read(spec(), bad)
    message = str(raised.value)
    assert message.splitlines()[1:6] == [
        "  - DJANGO_SECRET_KEY is shorter than 50 characters; it should hold a random secret "
        "of at least 50 characters.",
        "  - DATABASE_URL is not a database URL with a known scheme; it should hold a database "
        "URL such as postgres://user:password@host:5432/name.",
        "  - DJANGO_ALLOWED_HOSTS is empty; it should hold a comma-separated list.",
        "  - WEB_CONCURRENCY is not an integer; it should hold an integer of at least 1.",
        "  - DJANGO_DEBUG is not a boolean; it should hold true or false (also on/off, "
        "yes/no, 1/0).",
    ]
    for value in bad.values():
        if value.strip(" ,"):
            assert value not in message
    assert "hunter2" not in message
    assert raised.value.__cause__ is None


def test_integer_minimum_and_choices():
    with pytest.raises(ImproperlyConfigured) as raised:
        env.read(
            {
                "WORKERS": env.integer(minimum=1),
                "LEVEL": env.string(choices=("INFO", "DEBUG")),
            },
            {"WORKERS": "0", "LEVEL": "LOUD"},
        )
    assert "WORKERS is less than 1; it should hold an integer of at least 1." in str(raised.value)
    assert "LEVEL is not one of INFO, DEBUG; it should hold one of INFO, DEBUG." in str(
        raised.value
    )


def test_empty_required_value_counts_as_missing():
    with pytest.raises(ImproperlyConfigured, match="DJANGO_ALLOWED_HOSTS is not set"):
        env.read({"DJANGO_ALLOWED_HOSTS": env.list()}, {"DJANGO_ALLOWED_HOSTS": ""})


def test_env_file_is_read_and_process_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# secrets for staging\n"
        f"DJANGO_SECRET_KEY={SECRET}\n"
        "export DATABASE_URL='sqlite:////srv/app/shared/db.sqlite3'\n"
        'DJANGO_ALLOWED_HOSTS="from-file.example.com"\n'
    )
    values = env.read(
        spec(),
        {"DJANGO_ENV_FILE": str(env_file), "DJANGO_ALLOWED_HOSTS": "from-process.example.com"},
    )
    assert values["DJANGO_SECRET_KEY"] == SECRET
    assert values["DATABASE_URL"]["NAME"] == "/srv/app/shared/db.sqlite3"
    assert values["DJANGO_ALLOWED_HOSTS"] == ["from-process.example.com"]


def test_env_file_does_not_touch_os_environ(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("DJANGO_CD_TEST_ONLY_VARIABLE=1\n")
    monkeypatch.setenv("DJANGO_ENV_FILE", str(env_file))
    assert env.read({"DJANGO_CD_TEST_ONLY_VARIABLE": env.integer()}) == {
        "DJANGO_CD_TEST_ONLY_VARIABLE": 1
    }
    import os

    assert "DJANGO_CD_TEST_ONLY_VARIABLE" not in os.environ


def test_missing_env_file_is_mentioned(tmp_path):
    missing = tmp_path / "nope.env"
    with pytest.raises(ImproperlyConfigured) as raised:
        env.read({"DJANGO_SECRET_KEY": env.secret()}, {"DJANGO_ENV_FILE": str(missing)})
    assert f"(DJANGO_ENV_FILE names {missing}, which does not exist.)" in str(raised.value)


def test_malformed_env_file_line_is_not_logged(tmp_path, caplog):
    env_file = tmp_path / ".env"
    env_file.write_text("THIS LINE HAS hunter2 IN IT\nGOOD=1\n")
    with caplog.at_level("DEBUG"):
        assert env.read_env_file(env_file) == {"GOOD": "1"}
    assert "hunter2" not in caplog.text


def test_database_url_default_may_be_a_url(tmp_path):
    """As with django-environ's ``db_url(default=...)``: the default URL is parsed."""
    path = tmp_path / "db.sqlite3"
    spec = {"DATABASE_URL": env.database_url(default=f"sqlite:///{path}")}
    assert env.read(spec, {})["DATABASE_URL"]["NAME"] == str(path)
    assert env.read(spec, {})["DATABASE_URL"]["ENGINE"] == "django.db.backends.sqlite3"
    given = env.read(spec, {"DATABASE_URL": "postgres://app:pw@db:5432/notes"})
    assert given["DATABASE_URL"]["NAME"] == "notes"


def test_a_malformed_default_database_url_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured) as raised:
        env.database_url(default="mysq://app:hunter2@db/notes")
    assert str(raised.value) == (
        "The default database URL is not a database URL with a known scheme."
    )
    assert "hunter2" not in str(raised.value)


def test_project_variables_leave_out_what_the_engine_sets():
    values = {"DJANGO_SETTINGS_MODULE": "x", "PATH": "/evil", "DEBUG": "0"}
    assert env.project_variables(values) == {"DEBUG": "0"}


def test_parse_env_text_reads_what_read_env_file_reads(tmp_path):
    text = 'A=1\n# comment\nB="two words"\nexport C=3\n'
    (tmp_path / ".env").write_text(text)
    assert env.parse_env_text(text) == env.read_env_file(tmp_path / ".env")
    assert env.parse_env_text(text) == {"A": "1", "B": "two words", "C": "3"}
