"""Release agents: a deploy's ``manage.py`` commands in one Django process per release,
with the exit status, output and timeouts a process of their own would give.

One scratch project deployed once for the module; each test talks to its current
release through the engine's own ``Release`` and a real ``manage.py cdagent``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline.agent import AgentPool, agents
from django_cd.pipeline.host import LocalHost
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.release import Release
from tests.conftest import make_project, stop
from tests.pipeline_support import Project, current, django_cd_config


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_venvs: Path) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("agent"), sample_venvs)
    try:
        code, _, stderr = project.deploy()
        assert code == 0, stderr
        yield project
    finally:
        stop(project)


@pytest.fixture
def release(project: Project) -> Release:
    with override_settings(DJANGO_CD=django_cd_config(project)):
        env = conf.get_environment("staging")
    release_id = current(project)
    assert release_id is not None
    return Release(env, LocalHost(), Layout(str(project.root("staging"))), release_id)


def pool_of(release: Release) -> AgentPool:
    assert release.host.agents is not None
    return release.host.agents


def test_commands_answer_as_their_own_process_would(release: Release) -> None:
    commands = [
        ("check",),
        ("migrate", "no_such_app"),
        ("shell", "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"),
        ("shell", "-c", "raise SystemExit('a message, then status 1')"),
        ("shell", "-c", "import os; os.system('echo from a child process')"),
    ]
    alone = [release.manage(*args) for args in commands]
    with agents(release.host):
        shared = [release.manage(*args) for args in commands]
        [agent] = pool_of(release).agents.values()
        assert agent.calls == len(commands)  # one process answered them all
    for by_itself, by_agent in zip(alone, shared, strict=True):
        assert (by_agent.returncode, by_agent.output) == (by_itself.returncode, by_itself.output)
    assert [r.returncode for r in shared] == [0, 1, 3, 1, 0]
    assert "No installed app with label 'no_such_app'" in shared[1].output
    assert "out\n" in shared[2].output and "err\n" in shared[2].output
    assert "a message, then status 1" in shared[3].output
    assert "from a child process" in shared[4].output


def test_other_commands_and_commands_outside_a_session_get_a_process(release: Release) -> None:
    with agents(release.host):
        assert release.manage("showmigrations", "notes").ok
        assert pool_of(release).agents == {}
        assert release.manage("check").ok
        assert len(pool_of(release).agents) == 1
    assert release.host.agents is None


def test_stdin_reaches_the_command(release: Release) -> None:
    code = "import sys; print(sys.stdin.read()[::-1])"
    with agents(release.host):
        result = release.manage("shell", "-v", "0", "-c", code, stdin="olleh")
    assert (result.returncode, result.output.strip()) == (0, "hello")


def test_no_database_connection_stays_open_between_commands(
    release: Release, project: Project
) -> None:
    """A restore replaces the SQLite file (or drops the PostgreSQL database): nobody may
    stay attached to the old one."""
    database = project.root("staging") / "shared" / "db.sqlite3"
    with agents(release.host):
        assert release.manage(
            "shell", "-c", "from notes.models import Note; Note.objects.count()"
        ).ok
        [agent] = pool_of(release).agents.values()
        fd_dir = Path(f"/proc/{agent.process.pid}/fd")
        targets = [os.path.realpath(fd) for fd in fd_dir.iterdir()]
        assert str(database) not in targets
        # ... while the command runs, it is attached (so the check above can fail).
        code = (
            "import os; from notes.models import Note; Note.objects.count(); "
            f"print({str(database)!r} in [os.path.realpath(f'/proc/self/fd/{{n}}') "
            "for n in os.listdir('/proc/self/fd')])"
        )
        assert release.manage("shell", "-c", code).output.strip().endswith("True")


def test_a_command_past_its_timeout_is_killed_and_the_next_gets_a_new_agent(
    release: Release,
) -> None:
    with agents(release.host):
        slow = release.manage(
            "shell",
            "-v",
            "0",
            "-c",
            "print('started', flush=True); import time; time.sleep(60)",
            timeout=2,
        )
        assert slow.returncode == -9
        assert slow.output.startswith("started")
        assert slow.output.endswith("(timed out after 2 s)")
        [first] = pool_of(release).agents.values()
        assert first.process.poll() is not None  # killed, as its own process would be
        assert release.manage("check").ok
        [second] = pool_of(release).agents.values()
        assert second.process.pid != first.process.pid


def test_an_agent_that_cannot_start_leaves_the_command_to_its_own_process(
    release: Release,
) -> None:
    broken = dataclasses.replace(
        release, env=dataclasses.replace(release.env, settings="settings.nope")
    )
    with agents(release.host):
        first = broken.manage("check")
        second = broken.manage("check")
        [agent] = pool_of(release).agents.values()
        assert not agent.ready and agent.calls == 0  # tried once, never again
    assert first.returncode != 0 and "No module named 'settings.nope'" in first.output
    assert (second.returncode, second.output) == (first.returncode, first.output)


def test_the_agent_goes_with_the_session(release: Release) -> None:
    with agents(release.host):
        assert release.manage("check").ok
        [agent] = pool_of(release).agents.values()
        scratch = pool_of(release).scratch
    assert agent.process.returncode == 0  # end of input: it exited by itself
    assert not Path(scratch).exists()
