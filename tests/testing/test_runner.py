"""PipelineRunner through `manage.py test` in real temp projects (subprocesses)."""

from __future__ import annotations

import pytest

from tests.testing.projects import git, make_project

UNITS = """\
from django.test import SimpleTestCase


class PriceTests(SimpleTestCase):
    def test_sum(self):
        self.assertEqual(1 + 1, 2)

    def test_rounding(self):
        self.assertEqual(round(2.675, 1), 2.7)
"""

FLOWS = """\
from django.test import SimpleTestCase, TestCase

from django_cd.testing import pipeline


@pipeline("functional")
class CheckoutTests(TestCase):
    def test_cart(self):
        self.assertTrue(True)

    def test_pay(self):
        self.assertTrue(True)

    @pipeline("slow")
    def test_big_order(self):
        self.assertTrue(True)


class GiftCheckoutTests(CheckoutTests):
    def test_gift_wrap(self):
        self.assertTrue(True)


@pipeline("functional", "slow")
class YearlyReportTests(SimpleTestCase):
    def test_yearly(self):
        self.assertTrue(True)
"""

# unit: PriceTests x2. functional: CheckoutTests cart+pay, GiftCheckoutTests cart+pay+gift,
# YearlyReportTests. slow: both test_big_order, YearlyReportTests. 10 tests in all.


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return make_project(
        tmp_path_factory.mktemp("shop"), {"test_units.py": UNITS, "test_flows.py": FLOWS}
    )


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        (["--pipeline=unit"], 2),
        (["--pipeline=functional"], 6),
        (["--pipeline=slow"], 3),
        (["--pipeline=unit,functional"], 8),
        (["--pipeline", "unit", "--pipeline", "slow"], 5),
        (["--pipeline=functional", "--exclude-pipeline=slow"], 5),
        (["--exclude-pipeline=slow"], 7),
        ([], 10),
        (["--pipeline=functional", "-k", "cart"], 2),
        (["--pipeline=functional", "--parallel", "2"], 6),
    ],
)
def test_selection_runs_exactly_the_pipeline(shop, args, ran):
    run = shop.manage("test", *args)
    assert run.returncode == 0, run.output
    assert run.ran == ran


def test_list_pipelines(shop):
    run = shop.manage("test", "--list-pipelines")
    assert run.returncode == 0, run.output
    assert run.stdout.splitlines() == [
        "pipeline    tests",
        "unit            2  (default: tests without @pipeline)",
        "functional      6",
        "smoke           0",
        "slow            3",
        "10 tests found.",
    ]
    assert "Ran " not in run.stderr


def test_unknown_pipeline_is_an_error(shop):
    run = shop.manage("test", "--pipeline=unit,nosuch")
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "CommandError: Unknown pipeline 'nosuch' in --pipeline. Declared pipelines: "
        "unit, functional, smoke, slow. Use one of them, or declare it in "
        "DJANGO_CD['PIPELINES']."
    )
    assert "Ran " not in run.stderr


def test_unknown_excluded_pipeline_is_an_error(shop):
    run = shop.manage("test", "--exclude-pipeline=slo")
    assert run.returncode == 1
    assert "CommandError: Unknown pipeline 'slo' in --exclude-pipeline." in run.stderr


def test_empty_selection_fails_unless_allowed(shop):
    run = shop.manage("test", "--pipeline=smoke")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "CommandError: The selection ran no test: --pipeline=smoke selected 0 of the 10 "
        "tests found. Check the pipeline names and the @pipeline decorators, or pass "
        "--allow-empty if an empty run is expected."
    )
    allowed = shop.manage("test", "--pipeline=smoke", "--allow-empty")
    assert allowed.returncode == 0, allowed.output
    assert allowed.ran == 0


def test_all_skipped_counts_as_empty(tmp_path):
    project = make_project(
        tmp_path,
        {
            "test_smoke.py": """\
            import unittest

            from django.test import SimpleTestCase

            from django_cd.testing import pipeline


            @pipeline("smoke")
            @unittest.skip("no site to test")
            class SiteTests(SimpleTestCase):
                def test_home(self):
                    pass

                def test_stats(self):
                    pass
            """
        },
    )
    run = project.manage("test", "--pipeline=smoke")
    assert run.returncode == 1
    # "OK (skipped=2)" before Python 3.12, "NO TESTS RAN (skipped=2)" since.
    assert "(skipped=2)" in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "CommandError: The selection ran no test: all 2 selected tests were skipped. "
        "Provide what they need (e.g. the smoke tests' base URL) or pass --allow-empty."
    )
    assert project.manage("test", "--pipeline=smoke", "--allow-empty").returncode == 0


def test_load_failure_is_always_selected(tmp_path):
    project = make_project(tmp_path, {"test_units.py": UNITS, "test_broken.py": "import nosuch\n"})
    run = project.manage("test", "--pipeline=unit")
    assert run.returncode == 1
    assert run.ran == 3
    assert "ModuleNotFoundError: No module named 'nosuch'" in run.stderr


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_junit_xml_report(tmp_path, parallel):
    import xml.etree.ElementTree as ET

    project = make_project(
        tmp_path,
        {
            "test_units.py": UNITS,
            "test_flows.py": FLOWS.replace(
                "def test_pay(self):\n        self.assertTrue(True)",
                "def test_pay(self):\n        self.assertEqual('paid', 'declined')",
            ),
        },
    )
    run = project.manage(
        "test", "--pipeline=functional", "--junit-xml", "reports/junit.xml", "--parallel", parallel
    )
    assert run.returncode == 1
    root = ET.parse(tmp_path / "reports/junit.xml").getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert sorted(f"{c.get('classname').rsplit('.', 1)[-1]}.{c.get('name')}" for c in cases) == [
        "CheckoutTests.test_cart",
        "CheckoutTests.test_pay",
        "GiftCheckoutTests.test_cart",
        "GiftCheckoutTests.test_gift_wrap",
        "GiftCheckoutTests.test_pay",
        "YearlyReportTests.test_yearly",
    ]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["test_pay", "test_pay"]
    messages = {c.find("failure").get("message") for c in cases if c.find("failure") is not None}
    # Before Python 3.13 the XML writer turned the message's newlines into spaces.
    assert {" ".join(m.split()) for m in messages} == {"'paid' != 'declined' - paid + declined"}
    properties = {
        p.get("name"): p.get("value") for p in root.findall("./testsuite/properties/property")
    }
    assert properties == {"pipelines": "functional"}


def test_failures_are_counted_in_their_pipeline_only(tmp_path):
    broken = FLOWS.replace(
        "def test_gift_wrap(self):\n        self.assertTrue(True)",
        "def test_gift_wrap(self):\n        raise RuntimeError('no paper')",
    )
    project = make_project(tmp_path, {"test_units.py": UNITS, "test_flows.py": broken})
    sha = git(tmp_path, "rev-parse", "HEAD")
    for parallel in ("1", "2"):
        run = project.manage(
            "test", "--pipeline=unit,functional", "--exclude-pipeline=slow", "--parallel", parallel
        )
        assert run.returncode == 1
        assert run.ran == 7
        unit, functional = project.result(sha, "unit"), project.result(sha, "functional")
        assert unit["passed"] is True
        assert unit["counts"] == {
            "run": 2,
            "failures": 0,
            "errors": 0,
            "skipped": 0,
            "expected_failures": 0,
            "unexpected_successes": 0,
        }
        assert functional["passed"] is False
        assert functional["counts"]["run"] == 5
        assert functional["counts"]["errors"] == 1
        assert functional["run_passed"] is False
        assert functional["parallel"] == int(parallel)


OWN_RUNNER = """\
from django.conf import settings
from django.test.runner import DiscoverRunner

from django_cd.testing import PipelineRunner


class ProjectRunner(DiscoverRunner):
    \"\"\"A project's own runner: it sets what its tests need.\"\"\"

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        settings.SHOP_CURRENCY = "EUR"


class Runner(PipelineRunner, ProjectRunner):
    \"\"\"The project's runner with pipelines: PipelineRunner first.\"\"\"
"""

NEEDS_OWN_RUNNER = """\
from django.conf import settings
from django.test import SimpleTestCase

from django_cd.testing import pipeline


class CurrencyTests(SimpleTestCase):
    def test_currency(self):
        self.assertEqual(settings.SHOP_CURRENCY, "EUR")


@pipeline("functional")
class FlowTests(SimpleTestCase):
    def test_currency_too(self):
        self.assertEqual(settings.SHOP_CURRENCY, "EUR")
"""


def test_a_projects_own_runner_takes_pipelines_as_a_mixin(tmp_path):
    """docs/testing.md: class Runner(PipelineRunner, ProjectRunner) keeps both."""
    project = make_project(
        tmp_path,
        {"test_currency.py": NEEDS_OWN_RUNNER},
        runner="proj.runner.Runner",
        files={"proj/runner.py": OWN_RUNNER},
    )
    unit = project.manage("test", "--pipeline=unit")
    assert unit.returncode == 0, unit.output
    assert unit.ran == 1
    both = project.manage("test", "--pipeline=unit,functional")
    assert both.returncode == 0, both.output
    assert both.ran == 2
