"""One path to production, through real deploys of the sample project.

live promotes from staging: ``deploy --env=live`` refuses a commit that has
not passed staging, deploys the newest commit that did when no ``--ref`` is
given, and ``--force --reason`` is recorded in history and the manifest.
"""

from __future__ import annotations

import json

from tests.gates.support import GatedProject
from tests.pipeline_support import commit_all, current, history


def test_live_takes_only_what_passed_staging(tmp_path, sample_venvs):
    project = GatedProject(tmp_path, venvs=sample_venvs)
    project.write_env_file("live", DJANGO_SECURE_SSL_REDIRECT=None)
    staged = project.head()

    # Nothing has passed staging: live refuses, and nothing is created under its root.
    refused = project.manage("deploy", "--env=live")
    assert refused.returncode == 1
    assert "  promotion   fail    " in refused.stdout
    assert refused.stderr.splitlines()[0] == (
        "CommandError: Predeploy gates failed (promotion): nothing was changed."
    )
    assert refused.stderr.splitlines()[1].startswith("  promotion: ")
    # Only the refusal itself is recorded, for the audit trail (venvs/: the test's links).
    made = sorted(p.name for p in project.root("live").iterdir() if p.name != "venvs")
    assert made == ["history.jsonl", "shared"]
    [entry] = [json.loads(line) for line in (project.root("live") / "history.jsonl").open()]
    assert (entry["status"], entry["failed_step"]) == ("refused", "predeploy")

    deployed = project.manage("deploy", "--env=staging")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "tagged cd/staging/1" in deployed.stdout

    # A newer commit, never deployed to staging, is refused by name...
    views = project.repo / "sampleproject" / "notes" / "views.py"
    views.write_text(views.read_text() + "\n# untested on staging\n")
    newer = commit_all(project.repo, "Not on staging yet")
    code, out, err = project.predeploy("--env=live", f"--ref={newer}")
    assert code == 1
    assert (
        f"  promotion   fail    {newer[:12]} has not passed staging (no successful deploy "
        "tagged cd/staging/<n> points at it)." in out
    )
    assert (
        f"hint: The newest commit that passed staging is {staged[:12]} (cd/staging/1): "
        "deploy --env=live without --ref deploys it. Or --force --reason '...' (recorded)." in out
    )
    code, data, _ = project.deploy("live", f"--ref={newer}")
    assert code == 1
    assert data["predeploy"]["ok"] is False
    assert [g["name"] for g in data["predeploy"]["gates"] if g["result"] == "fail"] == [
        "promotion"
    ]

    # ...and without --ref, live gets the staged commit, not HEAD.
    code, data, err = project.deploy("live")
    assert code == 0, err
    assert data["commit"] == staged
    assert data["tag"] == "cd/live/1"
    entry = history(project, "live")[-1]
    assert (entry["ref"], entry["commit"], entry["status"]) == ("cd/staging/1", staged, "success")
    assert entry["predeploy"]["force_reason"] is None
    assert entry["predeploy"]["gates"]["promotion"] == "ok"
    assert entry["predeploy"]["deployer"]["git"] == "Dee Ployer <dee@example.com>"

    # --force with a reason deploys the untested commit; the reason is on record.
    code, data, err = project.deploy("live", f"--ref={newer}", "--force", "--reason", "INC-7")
    assert code == 0, err
    assert data["commit"] == newer
    entry = history(project, "live")[-1]
    assert entry["predeploy"]["force_reason"] == "INC-7"
    assert entry["predeploy"]["gates"]["promotion"] == "warn"
    release = current(project, "live")
    manifest = json.loads(
        (project.root("live") / "releases" / str(release) / "release.json").read_text()
    )
    assert manifest["predeploy"]["force_reason"] == "INC-7"
    assert manifest["commit"] == newer
