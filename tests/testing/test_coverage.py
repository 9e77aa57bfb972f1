"""--coverage: measured with coverage's API, held to the project's fail_under, for real."""

from __future__ import annotations

import re

import pytest

from tests.testing.projects import git, make_project

# Six statements: the tests run four of them (two functions' def lines and bodies).
PRICING = """\
def total(prices):
    return sum(prices)


def discount(price, percent):
    return price * (100 - percent) / 100


def refund(price):
    raise NotImplementedError("refunds are not supported")
"""

PRICING_TESTS = """\
from django.test import SimpleTestCase


class TotalTests(SimpleTestCase):
    def test_total(self):
        from shop.pricing import total

        self.assertEqual(total([1, 2, 3]), 6)


class DiscountTests(SimpleTestCase):
    def test_discount(self):
        from shop.pricing import discount

        self.assertEqual(discount(200, 25), 150)
"""

# Imported by django.setup(), before any runner exists: 5 statements, the tests
# call none of them, so only `return` (line 8) is missed if measuring starts early.
MODELS = """\
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=50)

    def label(self):
        return self.name.upper()
"""

COVERAGERC = """\
[run]
source = shop
omit = shop/tests/*
branch = false

[report]
fail_under = {fail_under}
show_missing = true
"""


def project_with_threshold(root, fail_under):
    return make_project(
        root,
        {"test_pricing.py": PRICING_TESTS},
        files={
            "shop/pricing.py": PRICING,
            "shop/models.py": MODELS,
            ".coveragerc": COVERAGERC.format(fail_under=fail_under),
        },
    )


def total_line(output):
    [line] = [line for line in output.splitlines() if line.startswith("TOTAL")]
    return line.split()


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_below_fail_under_fails_the_run(tmp_path, parallel):
    project = project_with_threshold(tmp_path, 90)
    sha = git(tmp_path, "rev-parse", "HEAD")
    run = project.manage("test", "--coverage", "--parallel", parallel)
    assert run.returncode == 1, run.output
    assert run.ran == 2
    # pricing.py: 6 statements, refund's body missed; models.py: 5, label's body missed.
    assert total_line(run.stdout) == ["TOTAL", "11", "2", "82%"]
    assert "Coverage 81.82% is below fail_under=90: the run fails." in run.stderr
    data = project.result(sha, "unit")
    assert data["coverage"] == {"percent": 81.82, "fail_under": 90.0, "passed": False}
    assert data["passed"] is False


def test_at_or_above_fail_under_passes(tmp_path):
    project = project_with_threshold(tmp_path, 80)
    run = project.manage("test", "--coverage", "--pipeline=unit")
    assert run.returncode == 0, run.output
    assert total_line(run.stdout) == ["TOTAL", "11", "2", "82%"]
    assert re.search(r"shop/pricing\.py\s+6\s+1\s+83%\s+10\n", run.stdout), run.stdout
    # Measured from app loading on: the model's class body counts as run.
    assert re.search(r"shop/models\.py\s+5\s+1\s+80%\s+8\n", run.stdout), run.stdout
    assert "below fail_under" not in run.output
    # Data is saved where `coverage html` finds it.
    assert (tmp_path / ".coverage").exists()


def test_parallel_coverage_needs_a_configuration_file(tmp_path):
    project = make_project(
        tmp_path, {"test_pricing.py": PRICING_TESTS}, files={"shop/pricing.py": PRICING}
    )
    run = project.manage("test", "--coverage", "--parallel", "2")
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "CommandError: --coverage with --parallel needs a coverage configuration file "
        "(.coveragerc, setup.cfg, tox.ini or pyproject.toml with [tool.coverage.run]) in the "
        "working directory. Add one, or run with --parallel=1."
    )
