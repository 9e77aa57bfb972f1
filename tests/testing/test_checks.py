"""System checks django_cd.E020-E021 and the in-process parts of selection."""

from __future__ import annotations

import re
import unittest
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import SimpleTestCase, override_settings

from django_cd.testing import checks, decorator, pipeline, pipelines_of
from django_cd.testing.selection import Selection, count_by_pipeline, parse_names
from tests.testing.projects import make_project


@pytest.fixture
def registry():
    """Declarations made by a test are forgotten after it (other tests run `check`)."""
    saved = list(decorator.declarations)
    yield decorator.declarations
    decorator.declarations[:] = saved


def make_tests():
    class Plain(SimpleTestCase):
        def test_a(self):
            pass

    @pipeline("functional")
    class Flows(SimpleTestCase):
        def test_b(self):
            pass

        @pipeline("slow", "smoke")
        def test_c(self):
            pass

    class MoreFlows(Flows):
        def test_d(self):
            pass

    class Legacy(SimpleTestCase):
        slow = True  # what nose's @attr("slow") sets

        def test_e(self):
            pass

    loader = unittest.defaultTestLoader
    return [
        test
        for case in (Plain, Flows, MoreFlows, Legacy)
        for test in loader.loadTestsFromTestCase(case)
    ]


def names(tests):
    return [f"{type(t).__name__}.{t._testMethodName}" for t in tests]


def test_pipelines_of_nearest_declaration_wins(registry):
    tests = make_tests()
    by_name = {name: pipelines_of(t) for name, t in zip(names(tests), tests, strict=True)}
    assert by_name == {
        "Plain.test_a": ("unit",),
        "Flows.test_b": ("functional",),
        "Flows.test_c": ("slow", "smoke"),
        "MoreFlows.test_b": ("functional",),
        "MoreFlows.test_c": ("slow", "smoke"),
        "MoreFlows.test_d": ("functional",),
        "Legacy.test_e": ("slow",),
    }
    assert count_by_pipeline(tests) == {"unit": 1, "functional": 3, "slow": 3, "smoke": 2}


def test_default_pipeline_follows_settings(registry):
    [plain, *_] = make_tests()
    with override_settings(DJANGO_CD={"PIPELINES": ["fast", "unit"], "DEFAULT_PIPELINE": "fast"}):
        assert pipelines_of(plain) == ("fast",)


def test_selection_include_and_exclude(registry):
    tests = make_tests()
    assert names(Selection(include=("smoke",)).filter(tests)) == [
        "Flows.test_c",
        "MoreFlows.test_c",
    ]
    assert names(Selection(include=("functional",), exclude=("slow",)).filter(tests)) == [
        "Flows.test_b",
        "MoreFlows.test_b",
        "MoreFlows.test_d",
    ]
    assert Selection(exclude=("functional", "slow", "smoke")).recorded_pipelines(tests) == ["unit"]


def test_parse_names():
    assert parse_names(["unit, functional", "slow", "unit"], "--pipeline") == (
        "unit",
        "functional",
        "slow",
    )
    assert parse_names(None, "--pipeline") == ()
    with pytest.raises(CommandError, match=r"^Unknown pipelines 'e2e', 'fast' in --pipeline\. "):
        parse_names(["e2e,unit", "fast"], "--pipeline")
    with pytest.raises(CommandError, match=r"^--pipeline needs at least one pipeline name"):
        parse_names([","], "--pipeline")


def test_decorator_needs_a_name():
    with pytest.raises(TypeError, match=r"takes one or more pipeline names"):
        pipeline()


@pytest.mark.django_db  # Django 6.1's check command reads the database
def test_undeclared_pipeline_is_e020(registry):
    @pipeline("nightly")
    class Nightly(SimpleTestCase):
        pass

    [error] = checks.check_pipelines()
    assert error.id == "django_cd.E020"
    assert error.msg == (
        "Test tests.testing.test_checks.test_undeclared_pipeline_is_e020.<locals>.Nightly "
        "is in pipeline 'nightly', which is not declared."
    )
    assert error.hint == (
        "Use one of unit, functional, smoke, slow, or add 'nightly' to DJANGO_CD['PIPELINES']."
    )
    with override_settings(DJANGO_CD={"PIPELINES": ["unit", "nightly"]}):
        assert checks.check_pipelines() == []
    with pytest.raises(SystemCheckError, match=r"django_cd\.E020"):
        call_command("check")


def test_unusable_pipeline_name_is_e021(registry):
    with override_settings(DJANGO_CD={"PIPELINES": ["unit", "e2e/browser", "a,b"]}):
        errors = checks.check_pipelines()
    assert [e.id for e in errors] == ["django_cd.E021", "django_cd.E021"]
    assert (
        errors[0].msg == "DJANGO_CD['PIPELINES'] has the name 'e2e/browser', which cannot be used."
    )


def test_manage_check_imports_the_projects_tests(tmp_path):
    project = make_project(
        tmp_path,
        {
            "test_nightly.py": """\
            from django.test import SimpleTestCase

            from django_cd.testing import pipeline


            class ReportTests(SimpleTestCase):
                @pipeline("nightly")
                def test_totals(self):
                    pass
            """,
            "test_broken.py": "import nosuch\n",
        },
    )
    run = project.manage("check")
    assert run.returncode == 1
    assert (
        "?: (django_cd.E020) Test shop.tests.test_nightly.ReportTests.test_totals is in "
        "pipeline 'nightly', which is not declared." in run.stderr
    )
    assert "System check identified 1 issue" in run.stderr
    # The test run stops at the same check, before running anything.
    test_run = project.manage("test")
    assert test_run.returncode == 1
    assert "django_cd.E020" in test_run.stderr
    assert "Ran " not in test_run.stderr


def test_every_testing_check_id_is_documented():
    source = "".join(path.read_text() for path in Path(checks.__file__).parent.glob("*.py"))
    used = set(re.findall(r"django_cd\.E\d{3}", source))
    doc = (Path(__file__).parents[2] / "docs" / "checks.md").read_text()
    assert {"django_cd.E020", "django_cd.E021"} <= used
    assert used <= set(re.findall(r"^## (django_cd\.E\d{3})", doc, re.MULTILINE))


@pytest.mark.parametrize(
    ("argv", "imports"),
    [
        (["manage.py", "test"], True),
        (["manage.py", "check"], True),
        (["manage.py", "predeploy", "--env=live"], True),
        (["manage.py", "migrate"], False),
        (["manage.py", "check", "--deploy"], False),
        (["manage.py", "collectstatic", "--noinput"], False),
        (["manage.py"], False),
    ],
)
def test_test_modules_are_imported_only_where_they_matter(argv, imports):
    assert checks.imports_test_modules(argv) is imports


def test_migrate_does_not_import_the_projects_tests(tmp_path):
    project = make_project(
        tmp_path,
        {
            "test_nightly.py": """\
            from django.test import SimpleTestCase

            from django_cd.testing import pipeline

            IMPORTED = open("imported.txt", "a").write("x")


            @pipeline("nightly")
            class ReportTests(SimpleTestCase):
                def test_totals(self):
                    pass
            """,
        },
    )
    migrate = project.manage("migrate", "--plan")
    assert migrate.returncode == 0, migrate.output
    assert "django_cd.E020" not in migrate.stderr
    assert not (project.root / "imported.txt").exists()
    check = project.manage("check")
    assert check.returncode == 1
    assert "django_cd.E020" in check.stderr
    assert (project.root / "imported.txt").read_text() == "x"
