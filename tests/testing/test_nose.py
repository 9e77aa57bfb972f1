"""NosePipelineRunner (django-nose + pynose) through `manage.py test` in a temp project."""

from __future__ import annotations

import pytest

from tests.testing.projects import git, make_project

NOSE_TESTS = """\
from django.test import SimpleTestCase, TestCase
from nose.plugins.attrib import attr

from django_cd.testing import pipeline


class PriceTests(SimpleTestCase):
    def test_sum(self):
        self.assertEqual(1 + 1, 2)

    def test_product(self):
        self.assertEqual(2 * 3, 6)


@pipeline("functional")
class CheckoutTests(TestCase):
    def test_cart(self):
        self.assertTrue(True)

    def test_pay(self):
        self.assertTrue(True)


@attr("slow")
class ArchiveTests(SimpleTestCase):
    def test_archive(self):
        self.assertTrue(True)
"""


@pytest.fixture(scope="module")
def nose_shop(tmp_path_factory):
    return make_project(
        tmp_path_factory.mktemp("nose"),
        {"test_all.py": NOSE_TESTS},
        runner="django_cd.testing.NosePipelineRunner",
        settings_extra='INSTALLED_APPS += ["django_nose"]\n',
    )


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        (["--pipeline=unit"], 2),
        (["--pipeline=functional"], 2),
        (["--pipeline=slow"], 1),
        (["--pipeline=unit,slow"], 3),
        (["--exclude-pipeline=slow"], 4),
        ([], 5),
    ],
)
def test_nose_selects_by_pipeline(nose_shop, args, ran):
    run = nose_shop.manage("test", *args)
    assert run.returncode == 0, run.output
    assert run.ran == ran


def test_nose_records_results(nose_shop):
    sha = git(nose_shop.root, "rev-parse", "HEAD")
    run = nose_shop.manage("test", "--pipeline=functional,slow")
    assert run.returncode == 0, run.output
    functional = nose_shop.result(sha, "functional")
    assert functional["counts"]["run"] == 2
    assert functional["passed"] is True
    assert nose_shop.result(sha, "slow")["counts"]["run"] == 1


def test_nose_unknown_and_empty_selections_fail(nose_shop):
    unknown = nose_shop.manage("test", "--pipeline=nosuch")
    assert unknown.returncode == 1
    assert (
        "CommandError: Unknown pipeline 'nosuch' in --pipeline. Declared pipelines: "
        "unit, functional, smoke, slow." in unknown.stderr
    )
    empty = nose_shop.manage("test", "--pipeline=smoke")
    assert empty.returncode == 1
    assert empty.ran == 0
    assert "CommandError: The selection ran no test (0 run, 0 skipped)." in empty.stderr
    assert nose_shop.manage("test", "--pipeline=smoke", "--allow-empty").returncode == 0


def test_nose_failure_fails_the_run_and_its_pipeline(tmp_path):
    project = make_project(
        tmp_path,
        {
            "test_all.py": NOSE_TESTS.replace(
                "self.assertEqual(2 * 3, 6)", "self.assertEqual(2 * 3, 5)"
            )
        },
        runner="django_cd.testing.NosePipelineRunner",
        settings_extra='INSTALLED_APPS += ["django_nose"]\n',
    )
    sha = git(tmp_path, "rev-parse", "HEAD")
    run = project.manage("test", "--pipeline=unit,functional")
    assert run.returncode == 1
    assert run.ran == 4
    assert "FAILED (failures=1)" in run.stderr
    unit, functional = project.result(sha, "unit"), project.result(sha, "functional")
    assert (unit["passed"], unit["counts"]["failures"]) == (False, 1)
    assert (functional["passed"], functional["counts"]["failures"]) == (True, 0)
