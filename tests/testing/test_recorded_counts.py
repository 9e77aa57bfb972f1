"""The recorded counts equal the runner's own outcome, whatever the options.

Every outcome unittest knows (pass, failure, error, skip, expected failure, a
failed subtest) in one pipeline, run plainly and with ``--junit-xml``,
``--coverage`` and ``--parallel``: the JSON file must say what unittest's own
closing lines say. An all-skipped run is never "passed".
"""

from __future__ import annotations

import re

import pytest

from tests.testing.projects import git, make_project

MIXED = """\
import unittest
from django.test import SimpleTestCase


class MixedTests(SimpleTestCase):
    def test_pass_one(self):
        self.assertTrue(True)

    def test_pass_two(self):
        self.assertTrue(True)

    def test_fails(self):
        self.assertEqual(1, 2)

    def test_errors(self):
        raise RuntimeError("boom")

    def test_skipped(self):
        self.skipTest("not here")


# A second class, so that --parallel=2 really runs two workers.
class MoreMixedTests(SimpleTestCase):
    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 2)

    def test_subtest_fails(self):
        for n in (1, 2):
            with self.subTest(n=n):
                self.assertEqual(n, 1)
"""

ALL_SKIPPED = """\
import unittest
from django.test import SimpleTestCase


class LaterTests(SimpleTestCase):
    def test_one(self):
        self.skipTest("needs a site")

    @unittest.skip("not yet")
    def test_two(self):
        pass
"""

COVERAGERC = "[run]\nsource = shop\n"
# unittest's closing line, e.g. "FAILED (failures=2, errors=1, skipped=1, expected failures=1)".
SUMMARY_RE = re.compile(r"^(?:FAILED|OK)(?: \((?P<parts>[^)]*)\))?$", re.MULTILINE)
NAMES = {
    "failures": "failures",
    "errors": "errors",
    "skipped": "skipped",
    "expected failures": "expected_failures",
    "unexpected successes": "unexpected_successes",
}


def runner_outcome(stderr: str, ran: int) -> dict[str, int]:
    """What unittest itself reported, in the recorded file's terms."""
    counts = dict.fromkeys(NAMES.values(), 0)
    found = SUMMARY_RE.findall(stderr)
    assert len(found) == 1, stderr
    for part in filter(None, (p.strip() for p in found[0].split(","))):
        name, value = part.rsplit("=", 1)
        counts[NAMES[name]] = int(value)
    return {"run": ran, **counts}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return make_project(
        tmp_path_factory.mktemp("mixed"),
        {"test_mixed.py": MIXED},
        files={".coveragerc": COVERAGERC},
    )


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--junit-xml=reports/unit.xml"],
        ["--coverage"],
        ["--parallel=2"],
        ["--junit-xml=reports/unit.xml", "--coverage", "--parallel=2"],
    ],
    ids=["plain", "junit", "coverage", "parallel", "junit-coverage-parallel"],
)
def test_recorded_counts_equal_the_runners_outcome(mixed, options):
    sha = git(mixed.root, "rev-parse", "HEAD")
    run = mixed.manage("test", "--pipeline=unit", *options)
    assert run.returncode == 1, run.output
    expected = {
        "run": 7,
        "failures": 2,
        "errors": 1,
        "skipped": 1,
        "expected_failures": 1,
        "unexpected_successes": 0,
    }
    assert runner_outcome(run.stderr, run.ran) == expected
    recorded = mixed.result(sha, "unit")
    assert recorded["counts"] == expected
    assert recorded["passed"] is False
    assert recorded["run_passed"] is False
    assert recorded["parallel"] == (2 if "--parallel=2" in options else 1)
    assert (
        "Pipeline unit: FAILED (7 run, 2 failures, 1 errors, 1 skipped); recorded in "
        f".cd/results/{sha}/unit.json" in run.stdout
    )


@pytest.mark.parametrize("options", [[], ["--junit-xml=reports/unit.xml"]], ids=["plain", "junit"])
def test_all_skipped_run_is_not_passed(tmp_path, options):
    project = make_project(tmp_path, {"test_later.py": ALL_SKIPPED})
    sha = git(project.root, "rev-parse", "HEAD")
    run = project.manage("test", "--pipeline=unit", *options)
    assert run.returncode == 1
    assert "CommandError: The selection ran no test: all 2 selected tests were skipped." in (
        run.stderr
    )
    recorded = project.result(sha, "unit")
    assert recorded["counts"]["run"] == 2
    assert recorded["counts"]["skipped"] == 2
    assert recorded["passed"] is False
    assert (
        "Pipeline unit: ran no test, so not passed (2 run, 0 failures, 0 errors, 2 skipped)"
        in (run.stdout)
    )
