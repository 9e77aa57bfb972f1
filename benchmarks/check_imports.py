"""Benchmark: what the pipeline check (django_cd.E020) costs commands that run system checks.

Before issue 11 the check imported every first-party test module on every
command that runs the system checks (``migrate``, ``collectstatic``, the
deploy's own ``check``); now only ``test``, ``check`` and ``predeploy`` do.
Generates a throwaway project with MODULES test modules (each with 5 classes
of 5 tests, importing django.test and django_cd.testing), then times
``manage.py migrate --plan`` alternately with django_cd as it was before
(``git archive`` of --before, default the branch point bbd37be) and as it is
in this checkout, and prints each pair, the medians and the median saving.

    .venv/bin/python benchmarks/check_imports.py [--modules 300] [--repetitions 9]

Nothing generated is kept: everything lives in a temp dir.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_cd", "bench"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEST_RUNNER = "django_cd.testing.PipelineRunner"
"""

MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""


def test_module(index: int) -> str:
    lines = [
        "from django.test import SimpleTestCase, TestCase",
        "",
        "from django_cd.testing import pipeline",
        "",
    ]
    for number in range(5):
        lines += ["", f'@pipeline("{("unit", "functional")[number % 2]}")']
        lines.append(f"class Case{index}x{number}(SimpleTestCase):")
        for test in range(5):
            lines += [
                f"    def test_{test}(self):",
                f"        self.assertEqual({test}, {test})",
                "",
            ]
    return "\n".join(lines) + "\n"


def make_project(root: Path, modules: int) -> None:
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(SETTINGS)
    (root / "manage.py").write_text(MANAGE)
    tests = root / "bench" / "tests"
    tests.mkdir(parents=True)
    (root / "bench" / "__init__.py").write_text("")
    (tests / "__init__.py").write_text("")
    for index in range(modules):
        (tests / f"test_m{index:04d}.py").write_text(test_module(index))


def old_django_cd(commit: str, into: Path) -> Path:
    data = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "django_cd"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into


def timed(project: Path, django_cd_parent: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(django_cd_parent), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--plan"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", type=int, default=300)
    parser.add_argument("--repetitions", type=int, default=9)
    parser.add_argument("--before", default="bbd37be")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        project = base / "project"
        project.mkdir()
        make_project(project, args.modules)
        before = old_django_cd(args.before, base / "before")
        pairs = []
        for _ in range(args.repetitions):
            pairs.append((timed(project, before), timed(project, REPO_ROOT)))
            print(f"before {pairs[-1][0]:.3f} s  now {pairs[-1][1]:.3f} s", flush=True)
    old = statistics.median(p[0] for p in pairs)
    new = statistics.median(p[1] for p in pairs)
    savings = [p[0] - p[1] for p in pairs]
    print(f"{args.modules} test modules ({args.modules * 25} tests), manage.py migrate --plan:")
    print(f"median before {old:.3f} s, now {new:.3f} s, saving {statistics.median(savings):.3f} s")
    print(f"saving spread {min(savings):.3f}-{max(savings):.3f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
