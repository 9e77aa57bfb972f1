"""Bad input is refused before anything is created: no record, no root, no database.

In-process ``call_command`` against a real git repository and a real SQLite
staging database in a temp dir; nothing here deploys.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.instances_support import free_port_range
from tests.pipeline_support import commit_all, git


class Setup:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.repo = base / "repo"
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "main")
        git(self.repo, "config", "user.name", "T")
        git(self.repo, "config", "user.email", "t@example.com")
        (self.repo / "README").write_text("x\n")
        commit_all(self.repo, "first")
        self.staging_db = base / "staging" / "shared" / "db.sqlite3"
        self.staging_db.parent.mkdir(parents=True)
        with sqlite3.connect(self.staging_db) as db:
            db.execute("CREATE TABLE t (x TEXT)")
            db.executemany("INSERT INTO t VALUES (?)", [("y" * 1000,)] * 300)
        (self.staging_db.parent / ".env").write_text(f"DATABASE_URL=sqlite:///{self.staging_db}\n")
        self.testing = base / "testing"
        (self.testing / "shared").mkdir(parents=True)
        (self.testing / "shared" / ".env").write_text(
            "DATABASE_URL=sqlite:////unused.sqlite3\nDJANGO_SECRET_KEY=abc\n"
        )
        self.ports = free_port_range(4)

    def settings(self, **instances: Any) -> dict[str, Any]:
        server = {"type": "gunicorn", "wsgi": "notesboard.wsgi"}
        return {
            "REPOSITORY": str(self.repo),
            "ENVIRONMENTS": {
                "staging": {
                    "settings": "settings.staging",
                    "root": str(self.base / "staging"),
                    "server": {**server, "bind": "127.0.0.1:1"},
                },
                "testing": {
                    "settings": "settings.staging",
                    "root": str(self.testing),
                    "server": server,
                    "instances": {
                        "ports": list(self.ports),
                        "database": "db-{name}.sqlite3",
                        "database_from": "staging",
                        **instances,
                    },
                },
            },
        }

    def nothing_created(self) -> bool:
        entries = {p.name for p in self.testing.iterdir()}
        records = list((self.testing / "instances").glob("*.json"))
        return entries <= {"shared", "instances"} and records == []


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    yield Setup(tmp_path)


def create(setup: Setup, *args: str, **instances: Any) -> str:
    with (
        override_settings(DJANGO_CD=setup.settings(**instances)),
        pytest.raises(CommandError) as error,
    ):
        call_command("instance", "create", *args, stdout=StringIO(), stderr=StringIO())
    assert setup.nothing_created()
    return str(error.value)


def test_unknown_template(setup: Setup) -> None:
    message = create(setup, "--env=nope", "feat", "--ref", "main")
    assert message.startswith("Unknown environment 'nope'. Known environments: staging, testing.")


def test_a_plain_environment_is_no_template(setup: Setup) -> None:
    message = create(setup, "--env=staging", "feat", "--ref", "main")
    assert "'staging' is not a template of testing instances" in message


def test_a_branch_that_does_not_exist(setup: Setup) -> None:
    message = create(setup, "--env=testing", "feat", "--ref", "no-such-branch")
    assert message.startswith("Ref 'no-such-branch' does not exist in ")


@pytest.mark.parametrize("name", ["../etc", "a/b", "x.y", "Feat"])
def test_a_name_with_path_characters(setup: Setup, name: str) -> None:
    message = create(setup, "--env=testing", name, "--ref", "main")
    assert message.startswith(f"{name!r} is not a valid instance name")


def test_a_source_larger_than_the_limit(setup: Setup) -> None:
    message = create(setup, "--env=testing", "feat", "--ref", "main", max_database_mb=0.1)
    assert "more than the template's max_database_mb (0 MB): nothing was copied" in message


def test_a_port_outside_the_range_or_in_use(setup: Setup) -> None:
    first, last = setup.ports
    message = create(setup, "--env=testing", "feat", "--ref", "main", "--port", str(last + 1))
    assert message.startswith(f"Port {last + 1} is outside the instances' range {first}-{last}")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", first))
        listener.listen(1)
        message = create(setup, "--env=testing", "feat", "--ref", "main", "--port", str(first))
    assert message.startswith(f"Port {first} is in use by another process on this host")


def test_a_database_that_exists_already(setup: Setup) -> None:
    path = setup.testing / "feat" / "shared" / "db-feat.sqlite3"
    path.parent.mkdir(parents=True)
    path.write_text("")
    with override_settings(DJANGO_CD=setup.settings()), pytest.raises(CommandError) as error:
        call_command("instance", "create", "--env=testing", "feat", "--ref", "main")
    assert "exists already and belongs to no instance" in str(error.value)
    assert list((setup.testing / "instances").glob("*.json")) == []


def test_a_template_without_its_env_file(setup: Setup) -> None:
    (setup.testing / "shared" / ".env").unlink()
    message = create(setup, "--env=testing", "feat", "--ref", "main")
    assert message.startswith(f"{setup.testing}/shared/.env does not exist, so the database")


def test_actions_on_an_instance_that_does_not_exist(setup: Setup) -> None:
    with override_settings(DJANGO_CD=setup.settings()):
        for action in ("deploy", "refresh", "destroy"):
            with pytest.raises(CommandError, match="There is no instance 'ghost' of 'testing'"):
                call_command("instance", action, "--env=testing", "ghost")
        out = StringIO()
        call_command("instance", "list", stdout=out)
    assert out.getvalue() == "No instances.\n"


def test_an_instance_is_an_environment_and_its_lock_refuses_a_second_action(
    setup: Setup,
) -> None:
    from django_cd import conf
    from django_cd.instances.config import Template
    from django_cd.instances.registry import Record, Registry
    from django_cd.pipeline import LocalHost

    with override_settings(DJANGO_CD=setup.settings()):
        template = Template.of(conf.get_environment("testing"))
        registry = Registry(template, LocalHost())
        registry.save(Record("feat", "testing", "main", setup.ports[0], "db-feat.sqlite3"))
        env = conf.get_environment("testing.feat")
        assert (env.name, env.root) == ("testing.feat", f"{setup.testing}/feat")
        assert env.server.get("bind") == f"127.0.0.1:{setup.ports[0]}"
        with pytest.raises(conf.UnknownEnvironment):
            conf.get_environment("testing.ghost")
        lock = registry.lock("feat", "instance deploy")
        lock.acquire()
        try:
            with pytest.raises(CommandError) as error:
                call_command("instance", "destroy", "--env=testing", "feat")
        finally:
            lock.release()
        assert str(error.value).startswith("Instance 'feat': Another deploy holds the lock: ")
        assert registry.get("feat") is not None
        out = StringIO()
        call_command("instance", "destroy", "--env=testing", "feat", stdout=out)
        assert out.getvalue().startswith("destroyed testing.feat: server stopped")
        assert registry.records() == []


def test_prune_by_age_and_by_branch_gone(setup: Setup) -> None:
    from django_cd import conf
    from django_cd.instances.config import Template
    from django_cd.instances.registry import Record, Registry
    from django_cd.pipeline import LocalHost

    with override_settings(DJANGO_CD=setup.settings()):
        registry = Registry(Template.of(conf.get_environment("testing")), LocalHost())
        registry.save(Record("kept", "testing", "main", None, "db-kept.sqlite3"))
        old = Record("old", "testing", "main", None, "db-old.sqlite3")
        old.updated_at = "2026-01-01T00:00:00+00:00"
        registry.save(old)
        registry.save(Record("merged", "testing", "deleted-branch", None, "db-m.sqlite3"))

        def prune(*args: str) -> list[str]:
            out = StringIO()
            call_command("instance", "prune", "--env=testing", "--json", *args, stdout=out)
            return list(json.loads(out.getvalue())["pruned"])

        with pytest.raises(CommandError, match="Say which instances to prune"):
            prune()
        assert prune("--older-than", "7d", "--dry-run") == ["old"]
        assert prune("--gone", "--dry-run") == ["merged"]
        assert prune("--older-than", "7d", "--gone") == ["merged", "old"]
        assert [r.name for r in registry.records()] == ["kept"]
