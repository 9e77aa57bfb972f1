"""A release agent over SSH: the same answers as local processes, from one remote
Django process, on a real release of the sample project reached through a real sshd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline.agent import AgentPool, agents
from django_cd.pipeline.host import LocalHost
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.release import Release
from django_cd.pipeline.ssh import SSHHost
from tests.conftest import make_project, stop
from tests.pipeline_support import Project, current, django_cd_config
from tests.sshd_support import SSHServer, sshd  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_venvs: Path) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("ssh-agent"), sample_venvs)
    try:
        code, _, stderr = project.deploy()
        assert code == 0, stderr
        yield project
    finally:
        stop(project)


def release_on(host: LocalHost | SSHHost, project: Project) -> Release:
    with override_settings(DJANGO_CD=django_cd_config(project)):
        env = conf.get_environment("staging")
    release_id = current(project)
    assert release_id is not None
    return Release(env, host, Layout(str(project.root("staging"))), release_id)


@pytest.fixture
def remote(project: Project, sshd: SSHServer) -> Iterator[Release]:  # noqa: F811
    host = SSHHost(sshd.spec(project.root("staging")))
    try:
        yield release_on(host, project)
    finally:
        host.close()


def pool_of(release: Release) -> AgentPool:
    assert release.host.agents is not None
    return release.host.agents


def test_an_agent_over_ssh_answers_as_local_processes_do(
    remote: Release, project: Project
) -> None:
    local = release_on(LocalHost(), project)
    commands = [
        ("check",),
        ("migrate", "no_such_app"),
        ("shell", "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"),
        ("shell", "-v", "0", "-c", "import sys; print(sys.stdin.read()[::-1])"),
    ]
    alone = [local.manage(*args, stdin="olleh") for args in commands]
    with agents(remote.host):
        shared = [remote.manage(*args, stdin="olleh") for args in commands]
        [agent] = pool_of(remote).agents.values()
        assert agent.calls == len(commands)  # one remote process answered them all
        scratch = pool_of(remote).scratch
    for by_itself, by_agent in zip(alone, shared, strict=True):
        assert (by_agent.returncode, by_agent.output) == (by_itself.returncode, by_itself.output)
    assert [r.returncode for r in shared] == [0, 1, 3, 0]
    assert shared[3].output.strip() == "hello"
    assert agent.process.returncode == 0  # end of input: it exited by itself
    assert not Path(scratch).exists()


def test_an_agent_over_ssh_is_killed_past_a_timeout(remote: Release) -> None:
    with agents(remote.host):
        slow = remote.manage(
            "shell",
            "-v",
            "0",
            "-c",
            "print('started', flush=True); import time; time.sleep(60)",
            timeout=2,
        )
        [first] = pool_of(remote).agents.values()
        assert (slow.returncode, slow.output) == (-9, "started\n\n(timed out after 2 s)")
        assert not remote.host.pid_alive(first.process.pid)
        assert remote.manage("check").ok
        [second] = pool_of(remote).agents.values()
        assert second.process.pid != first.process.pid
