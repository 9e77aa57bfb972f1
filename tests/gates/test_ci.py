"""The CI examples run: each file's shell steps, in order, against a scratch clone.

``sampleproject/ci/Jenkinsfile`` and ``sampleproject/ci/github-actions.yml``
are parsed, their shell steps extracted in order (approval steps and
``uses:`` actions skipped), and run with bash in a scratch repository of the
sample project, as a CI agent on the deploy host would. Only the settings
module and the smoke URL come from the test (free ports instead of 8601/8602):
everything else is the files' own commands.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gates.support import GatedProject
from tests.instances_support import add_testing_template
from tests.pipeline_support import REPO_ROOT, Project, current, get, history

CI_DIR = REPO_ROOT / "sampleproject" / "ci"
SH_RE = re.compile(r"""^\s*sh\s+(?:'([^']*)'|"([^"]*)")\s*$""", re.MULTILINE)
ENV_RE = re.compile(r"^\s*([A-Z_][A-Z0-9_]*)\s*=\s*'([^']*)'\s*$", re.MULTILINE)


STAGE_RE = re.compile(r"^\s*stage\('([^']+)'\)", re.MULTILINE)


def jenkins_steps(text: str, build: str = "main") -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The pipeline's environment and the ``sh`` steps a ``main`` or pull request (``pr``)
    build runs, in order (cwd "." for each): a stage's ``when`` says which builds run it."""
    block = re.search(r"environment\s*\{(.*?)\}", text, re.DOTALL)
    env = dict(ENV_RE.findall(block.group(1))) if block else {}
    starts = [m.start() for m in STAGE_RE.finditer(text)] + [len(text)]
    steps = []
    for start, end in itertools.pairwise(starts):
        stage = text[start:end]
        runs_on = (
            "pr" if "changeRequest()" in stage else "main" if "branch 'main'" in stage else build
        )
        if runs_on == build:
            steps += [(".", a or b) for a, b in SH_RE.findall(stage)]
    return env, steps


# Which jobs' ``if:`` a push to main, a pull request push, and a closed pull request meet.
EVENTS = {
    "push": "github.event_name == 'push'",
    "pull_request": "github.event.action != 'closed'",
    "closed": "github.event.action == 'closed'",
}


def github_steps(text: str, event: str = "push") -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The workflow's environment and the ``run`` steps of the jobs ``event`` runs, job
    after job, in order."""
    workflow = yaml.safe_load(text)
    env = {k: str(v) for k, v in (workflow.get("env") or {}).items()}
    steps = []
    for job in workflow["jobs"].values():
        if EVENTS[event] not in job.get("if", ""):
            continue
        for step in job["steps"]:
            if "run" in step:
                steps.append((step.get("working-directory", "."), step["run"]))
    return env, steps


def run_steps(project: Project, env: dict[str, str], steps: list[tuple[str, str]]) -> list[str]:
    """Run each step with bash in the clone; stop at the first failure. The commands run."""
    environ = {
        **os.environ,
        **env,
        # The test's own deploy settings (free ports) and where its staging answers.
        "DJANGO_SETTINGS_MODULE": "settings.cdtest",
        "SMOKE_BASE_URL": project.url("staging"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    }
    environ.pop("COVERAGE_PROCESS_START", None)
    ran = []
    for workdir, command in steps:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=project.repo / workdir,
            env=environ,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
        ran.append(command)
    return ran


@pytest.fixture
def project(tmp_path, sample_venvs):
    pipelines = {"required_pipelines": ["unit", "functional"]}
    project = GatedProject(
        tmp_path, live=pipelines, staging=pipelines, server="gunicorn", venvs=sample_venvs
    )
    project.write_env_file("live", DJANGO_SECURE_SSL_REDIRECT=None)
    add_testing_template(project)  # the main build prunes old pull request instances
    yield project
    project.stop_servers()


def test_jenkinsfile_stages_run(project):
    env, steps = jenkins_steps((CI_DIR / "Jenkinsfile").read_text())
    assert env == {
        "DJANGO_SETTINGS_MODULE": "settings.dev",
        "SMOKE_BASE_URL": "http://127.0.0.1:8601/",
    }
    ran = run_steps(project, env, steps)
    tests = "cd sampleproject && DJANGO_SETTINGS_MODULE=settings.test python manage.py test"
    assert [command.split(" --junit-xml")[0] for command in ran] == [
        "python -m pip install --quiet -r sampleproject/requirements.txt",
        f"{tests} --pipeline=unit",
        f"{tests} --pipeline=functional",
        "python sampleproject/manage.py deploy --env=staging",
        f"{tests} --pipeline=smoke",
        "python sampleproject/manage.py predeploy --env=live",
        "python sampleproject/manage.py deploy --env=live",
        "python sampleproject/manage.py instance prune --env=testing --older-than 7d",
    ]
    _assert_promoted(project)
    assert (project.repo / "reports" / "functional.xml").exists()


def test_github_actions_steps_run(project):
    env, steps = github_steps((CI_DIR / "github-actions.yml").read_text())
    assert [workdir for workdir, _ in steps] == [".", "sampleproject", "sampleproject", ".",
                                                 "sampleproject", ".", "."]  # fmt: skip
    run_steps(project, env, steps)
    _assert_promoted(project)
    assert (project.repo / "reports" / "smoke.xml").exists()


def _assert_promoted(project: GatedProject) -> None:
    staged, live = history(project, "staging")[-1], history(project, "live")[-1]
    assert (staged["status"], staged["tag"]) == ("success", "cd/staging/1")
    assert (live["status"], live["ref"], live["commit"]) == (
        "success",
        "cd/staging/1",
        staged["commit"],
    )
    assert current(project, "live") == live["release"]


def test_pull_request_jobs_create_refresh_and_destroy_the_instance(tmp_path, sample_venvs):
    """A pull request's first build creates pr-<n> (GitHub Actions), a later one refreshes
    it (Jenkins, the same command), closing it destroys it (GitHub Actions). The install
    step is the main jobs' (run by the tests above)."""
    project = Project(tmp_path, venvs=sample_venvs)
    add_testing_template(project)
    project.link_venvs("testing", sample_venvs)
    try:
        code, _, stderr = project.deploy()
        assert code == 0, stderr
        text = (CI_DIR / "github-actions.yml").read_text()
        env, steps = github_steps(text, "pull_request")
        assert [command.split()[-1] for _, command in steps] == [
            "sampleproject/requirements.txt",
            "--or-refresh",
        ]
        pr = {**env, "PR": "7"}
        ran = run_steps(project, pr, steps[1:])  # opened: created
        url = _instances(project)["pr-7"]["url"]
        assert get(url)[0] == 200

        env, steps = jenkins_steps((CI_DIR / "Jenkinsfile").read_text(), "pr")
        assert [command for _, command in steps][-1] == (
            'python sampleproject/manage.py instance create --env=testing "pr-$CHANGE_ID" '
            "--ref HEAD --or-refresh"
        )
        run_steps(project, {**env, "CHANGE_ID": "7"}, steps[-1:])  # synchronize: refreshed
        refreshed = _instances(project)["pr-7"]
        assert (refreshed["url"], refreshed["status"]) == (url, "ready")
        assert get(url)[0] == 200
        assert [e["status"] for e in history(project, "testing/pr-7")] == ["success"] * 2
        assert ran == [steps[-1][1].replace("$CHANGE_ID", "$PR")]

        run_steps(project, pr, github_steps(text, "closed")[1])
        assert _instances(project) == {}
        assert not (project.root("testing") / "pr-7").exists()
    finally:
        project.manage("instance", "prune", "--env=testing", "--older-than", "0s")
        project.stop_servers()


def _instances(project: Project) -> dict[str, dict[str, object]]:
    done = project.manage("instance", "list", "--env=testing", "--json")
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}
