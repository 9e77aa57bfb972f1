"""Benchmark: `manage.py test --pipeline=unit` against Django's `--tag=unit`, same tests.

Generates a throwaway project with 5,000 trivial tests spread over the four
default pipelines (each class carries both `@pipeline(name)` and Django's
`@tag(name)`, so both options select exactly the same tests), commits it to a
temp git repository, then times both commands side by side, alternating, for
several repetitions. Prints each pair, the medians and the median ratio.

    .venv/bin/python benchmarks/pipeline_selection.py [--repetitions 7]

Nothing generated is kept: the project lives in a temp dir.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Tests per pipeline: 5,000 in all.
SPREAD = {"unit": 3000, "functional": 1250, "smoke": 500, "slow": 250}
TESTS_PER_CLASS = 25
CLASSES_PER_MODULE = 4
TARGET = 1.05

SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_cd", "bench"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
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


def generate(root: Path) -> int:
    """Write the project under ``root``; return the number of tests written."""
    (root / "proj").mkdir()
    (root / "proj/__init__.py").write_text("")
    (root / "proj/settings.py").write_text(SETTINGS)
    (root / "manage.py").write_text(MANAGE)
    tests_dir = root / "bench/tests"
    tests_dir.mkdir(parents=True)
    (root / "bench/__init__.py").write_text("")
    (tests_dir / "__init__.py").write_text("")
    written = 0
    for name, count in SPREAD.items():
        classes = count // TESTS_PER_CLASS
        for module in range(0, classes, CLASSES_PER_MODULE):
            lines = [
                "from django.test import SimpleTestCase, tag",
                "",
                "from django_cd.testing import pipeline",
                "",
            ]
            for number in range(module, min(module + CLASSES_PER_MODULE, classes)):
                lines += ["", f'@pipeline("{name}")', f'@tag("{name}")']
                lines.append(f"class {name.title()}Tests{number}(SimpleTestCase):")
                for test in range(TESTS_PER_CLASS):
                    lines.append(f"    def test_{test}(self):\n        self.assertTrue(True)\n")
                    written += 1
            (tests_dir / f"test_{name}_{module:03d}.py").write_text("\n".join(lines) + "\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-qm",
            "suite",
        ],
        cwd=root,
        check=True,
    )
    return written


def timed(root: Path, *args: str) -> tuple[float, float, int]:
    """Wall and CPU time of one `manage.py test` run, and the number of tests it ran."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "test", "-v", "0", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"manage.py test {' '.join(args)} failed:\n{done.stderr}")
    ran = re.findall(r"^Ran (\d+) tests? in", done.stderr, re.MULTILINE)
    return elapsed, cpu, int(ran[0]) if ran else -1


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child (git's included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repetitions", type=int, default=7)
    options = parser.parse_args()
    pipeline_args = ("--pipeline=unit",)
    tag_args = ("--tag=unit", "--testrunner=django.test.runner.DiscoverRunner")
    with tempfile.TemporaryDirectory(prefix="cd-bench-") as tmp:
        root = Path(tmp)
        total = generate(root)
        print(f"{total} tests generated; {SPREAD['unit']} in pipeline unit.")
        timed(root, *pipeline_args)  # warm-up: byte-compile the suite once
        timed(root, *tag_args)
        ratios, cpu_ratios = [], []
        pipeline_times: list[float] = []
        tag_times: list[float] = []
        print(f"{'rep':>3}  {'--pipeline=unit':>16}  {'--tag=unit':>11}  ratio  cpu ratio")
        for rep in range(1, options.repetitions + 1):
            # Alternate the order so drift on the machine hits both equally.
            pair = [(pipeline_args, pipeline_times), (tag_args, tag_times)]
            cpu = {}
            for args, times in pair if rep % 2 else reversed(pair):
                elapsed, cpu[args], ran = timed(root, *args)
                if ran != SPREAD["unit"]:
                    raise SystemExit(f"{' '.join(args)} ran {ran} tests, not {SPREAD['unit']}")
                times.append(elapsed)
            ratios.append(pipeline_times[-1] / tag_times[-1])
            cpu_ratios.append(cpu[pipeline_args] / cpu[tag_args])
            row = f"{rep:>3}  {pipeline_times[-1]:>15.3f}s  {tag_times[-1]:>10.3f}s"
            print(f"{row}  {ratios[-1]:.3f}  {cpu_ratios[-1]:.3f}")
    median = statistics.median(ratios)
    print(
        f"median wall time: --pipeline=unit {statistics.median(pipeline_times):.3f}s, "
        f"--tag=unit {statistics.median(tag_times):.3f}s; median ratio {median:.3f} "
        f"(target <= {TARGET}: {'met' if median <= TARGET else 'NOT met'}); "
        f"median CPU-time ratio {statistics.median(cpu_ratios):.3f}"
    )
    return 0 if median <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
