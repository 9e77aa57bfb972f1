"""Recorded results: where they go, what they hold, and the gate's library API."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from django_cd.testing import results
from tests.testing.projects import git, make_project
from tests.testing.test_runner import FLOWS, UNITS

ZERO = {"failures": 0, "errors": 0, "skipped": 0, "expected_failures": 0}


@pytest.fixture
def shop(tmp_path):
    return make_project(tmp_path, {"test_units.py": UNITS, "test_flows.py": FLOWS})


def gate(project):
    """The results API pointed at ``project``'s repository."""
    return override_settings(DJANGO_CD={"REPOSITORY": str(project.root)})


def test_clean_whole_run_is_evidence(shop):
    sha = git(shop.root, "rev-parse", "HEAD")
    run = shop.manage("test", "--pipeline=unit", "--junit-xml=junit.xml")
    assert run.returncode == 0, run.output
    assert (
        f"Pipeline unit: passed (2 run, 0 failures, 0 errors, 0 skipped); recorded in "
        f".cd/results/{sha}/unit.json" in run.stdout
    )
    data = shop.result(sha, "unit")
    assert data["sha"] == sha
    assert data["dirty"] is False
    assert data["complete"] is True
    assert data["pipeline"] == "unit"
    assert data["passed"] is True
    assert data["run_passed"] is True
    assert data["counts"] == {"run": 2, "unexpected_successes": 0, **ZERO}
    assert data["selection"] == {
        "pipelines": ["unit"],
        "excluded_pipelines": [],
        "labels": [],
        "patterns": [],
        "tags": [],
        "exclude_tags": [],
    }
    assert data["settings_module"] == "proj.settings"
    assert data["junit_xml"] == str(shop.root / "junit.xml")
    assert data["coverage"] is None
    assert data["format"] == 1
    assert 0 < data["duration"] < 60
    # The results directory ignores itself; an untracked report leaves the tree clean.
    assert (shop.root / ".cd/results/.gitignore").read_text() == "*\n"
    assert git(shop.root, "status", "--porcelain") == "?? junit.xml"

    with gate(shop):
        result = results.latest(sha, "unit")
        assert result is not None
        assert result.evidence
        assert result.counts == results.Counts(run=2)
        assert results.latest("HEAD", "unit") == result
        assert results.latest(sha, "functional") is None
        assert results.passed(sha, ["unit"]) is True
        assert results.passed(sha, ["unit", "functional"]) is False
        assert results.missing_or_failed(sha, ["unit", "functional"]) == ["functional"]
        with pytest.raises(results.NotARepository) as raised:
            results.latest("no-such-branch", "unit")
        assert str(raised.value) == (
            f"'no-such-branch' is not a commit of the repository at {shop.root}."
        )


def test_run_without_pipeline_records_each_pipeline_it_holds(shop):
    sha = git(shop.root, "rev-parse", "HEAD")
    assert shop.manage("test").returncode == 0
    recorded = sorted(p.name for p in (shop.root / ".cd/results" / sha).iterdir())
    assert recorded == ["functional.json", "slow.json", "unit.json"]
    assert shop.result(sha, "functional")["counts"]["run"] == 6
    assert shop.result(sha, "slow")["counts"]["run"] == 3
    with gate(shop):
        assert results.passed(sha, ["unit", "functional", "slow"]) is True


def test_dirty_tree_and_partial_runs_are_local_only(shop):
    sha = git(shop.root, "rev-parse", "HEAD")
    assert shop.manage("test", "--pipeline=unit").returncode == 0
    evidence = (shop.root / f".cd/results/{sha}/unit.json").read_text()

    partial = shop.manage("test", "--pipeline=unit", "shop.tests.test_units.PriceTests.test_sum")
    assert partial.returncode == 0
    assert partial.ran == 1
    local = shop.result(sha, "unit", local=True)
    assert local["complete"] is False
    assert local["dirty"] is False
    assert local["selection"]["labels"] == ["shop.tests.test_units.PriceTests.test_sum"]

    # An uncommitted failing change: recorded, but never as the commit's evidence.
    (shop.root / "shop/tests/test_units.py").write_text(
        UNITS.replace("round(2.675, 1), 2.7", "round(2.675, 1), 2.68")
    )
    dirty = shop.manage("test", "--pipeline=unit")
    assert dirty.returncode == 1
    local = shop.result(sha, "unit", local=True)
    assert local["dirty"] is True
    assert local["complete"] is True
    assert local["passed"] is False
    assert local["counts"]["failures"] == 1
    assert (shop.root / f".cd/results/{sha}/unit.json").read_text() == evidence
    with gate(shop):
        assert results.passed(sha, ["unit"]) is True
        assert results.latest(sha, "unit", local=True).dirty is True

    # Committed, the failure becomes the new commit's evidence.
    new_sha = shop.commit("break rounding")
    assert shop.manage("test", "--pipeline=unit").returncode == 1
    with gate(shop):
        assert results.latest(new_sha, "unit").counts.failures == 1
        assert results.passed(new_sha, ["unit"]) is False
        assert results.passed(sha, ["unit"]) is True


def test_empty_allowed_run_is_recorded_but_not_passed(shop):
    sha = git(shop.root, "rev-parse", "HEAD")
    run = shop.manage("test", "--pipeline=smoke", "--allow-empty")
    assert run.returncode == 0
    assert "Pipeline smoke: ran no test, so not passed (0 run" in run.stdout
    data = shop.result(sha, "smoke")
    assert data["passed"] is False
    assert data["counts"]["run"] == 0
    with gate(shop):
        assert results.passed(sha, ["smoke"]) is False


def test_failfast_stop_fails_every_pipeline(tmp_path):
    broken = UNITS.replace("self.assertEqual(1 + 1, 2)", "self.assertEqual(1 + 1, 3)")
    project = make_project(tmp_path, {"test_units.py": broken, "test_flows.py": FLOWS})
    sha = git(tmp_path, "rev-parse", "HEAD")
    run = project.manage("test", "--pipeline=unit,functional", "--failfast")
    assert run.returncode == 1
    assert project.result(sha, "functional")["passed"] is False
    assert project.result(sha, "unit")["passed"] is False


def test_outside_a_repository_nothing_is_recorded(shop):
    import shutil

    shutil.rmtree(shop.root / ".git")
    run = shop.manage("test", "--pipeline=unit")
    assert run.returncode == 0
    assert "Test results not recorded: no git commit to file them under" in run.stdout
    assert not (shop.root / ".cd").exists()


def test_result_round_trips_through_json():
    result = results.Result(
        sha="a" * 40,
        dirty=False,
        complete=True,
        pipeline="unit",
        passed=True,
        counts=results.Counts(run=3, skipped=1),
        started_at="2026-01-01T00:00:00+00:00",
        duration=1.5,
    )
    assert results.Result.from_dict(json.loads(result.to_json())) == result
    assert result.counts.executed == 2
