"""What the migration version checks and plan lints cost, next to what Django does anyway.

Generates an app with N migrations (a CreateModel, then N-1 AddFields) in a
temp dir, then times, median of R runs each: ``manage.py check`` in a fresh
process with and without django_cd installed (what every command pays), and
in one process:

- Django building the migration graph from disk (``MigrationLoader(None)``),
  which ``makemigrations`` and ``migrate`` do on every run;
- django-cd's version-file system check (it builds that graph itself);
- ``pending_plan()`` (what ``migrate --plan`` computes) on a SQLite file database
  that has applied the first migration;
- Django rendering the SQL of that plan the way ``sqlmigrate`` does
  (``MigrationExecutor.collect_sql``), the baseline of any SQL-level lint;
- ``lint_plan()`` on the same database (rules + django-migration-linter's SQL analysis).

Usage: .venv/bin/python benchmarks/migration_version.py [N] [R]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("bench", "{previous}")]
    operations = [migrations.AddField("item", "f{n}", models.IntegerField(null=True))]
"""
INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))]),
    ]
"""


def generate(root: Path, count: int) -> str:
    migrations = root / "bench" / "migrations"
    migrations.mkdir(parents=True)
    (root / "bench" / "__init__.py").write_text("")
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    previous = "0001_initial"
    for n in range(2, count + 1):
        name = f"{n:04d}_item_f{n}"
        (migrations / f"{name}.py").write_text(MIGRATION.format(previous=previous, n=n))
        previous = name
    (migrations / "version.txt").write_text(previous + "\n")
    return previous


SETTINGS = """\
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTALLED_APPS = (["django_cd"] if os.environ.get("BENCH_WITH_CD") else []) + ["bench"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""


def cold_check_ms(root: Path, repeat: int) -> tuple[float, float]:
    """``manage.py check`` in a fresh process without and with django_cd installed.

    The two variants alternate, so that load from other processes on the
    machine falls on both alike; medians of each.
    """
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchsettings", "PYTHONPATH": str(root)}
    base.pop("BENCH_WITH_CD", None)
    variants = {"without": base, "with": {**base, "BENCH_WITH_CD": "1"}}
    command = [sys.executable, "-m", "django", "check"]
    times: dict[str, list[float]] = {"without": [], "with": []}
    for round_ in range(repeat + 1):
        for name, env in variants.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
            if round_:  # the first round warms the bytecode cache
                times[name].append((time.perf_counter() - start) * 1000)
    return statistics.median(times["without"]), statistics.median(times["with"])


def alternating_ms(functions: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median time of each function, the functions run in turn in every round."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        generate(root, count)
        (root / "benchsettings.py").write_text(SETTINGS)
        cold_without, cold_with = cold_check_ms(root, repeat)
        sys.path.insert(0, str(root))
        import django
        from django.conf import settings

        settings.configure(
            BASE_DIR=root,
            INSTALLED_APPS=["django_cd", "bench"],
            DATABASES={
                "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": root / "db.sqlite3"}
            },
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            USE_TZ=True,
        )
        django.setup()
        from django.core.management import call_command
        from django.db.migrations.loader import MigrationLoader

        from django_cd.migration_version import lint_plan, pending_plan
        from django_cd.migration_version.checks import check_version_files
        from django_cd.migration_version.plan import executor

        def collect_sql() -> list[str]:
            migration_executor = executor()
            leaves = migration_executor.loader.graph.leaf_nodes()
            plan = migration_executor.migration_plan(leaves)
            return migration_executor.loader.collect_sql(plan)

        call_command("migrate", "django_cd", verbosity=0)  # only bench's are measured
        call_command("migrate", "bench", "0001", verbosity=0)
        assert check_version_files() == [], "the generated version.txt must be current"
        assert len(pending_plan()) == count - 1
        assert lint_plan().findings == ()  # nullable AddFields: nothing to report

        medians = alternating_ms(
            {
                "graph": lambda: MigrationLoader(None, ignore_no_migrations=True),
                "check": check_version_files,
                "plan": pending_plan,
                "sql": collect_sql,
                "lint": lint_plan,
            },
            repeat,
        )
        graph, check, plan = medians["graph"], medians["check"], medians["plan"]
        sql, lint = medians["sql"], medians["lint"]
        print(f"{count} migrations, median of {repeat} runs (ms):")
        print(f"  manage.py check, fresh process, without django_cd {cold_without:8.1f}")
        print(
            f"  manage.py check, fresh process, with django_cd    {cold_with:8.1f}"
            f"   {cold_with / cold_without:5.2f}x"
        )
        print(f"  Django graph from disk (baseline)  {graph:8.1f}")
        print(f"  version-file system check         {check:8.1f}   {check / graph:5.2f}x graph")
        print(f"  pending_plan (migrate --plan)     {plan:8.1f}")
        print(f"  Django's SQL of the plan (sqlmigrate way) {sql:8.1f}")
        print(f"  lint_plan                         {lint:8.1f}   {lint / sql:5.2f}x Django's SQL")
        print(f"  lint_plan per pending migration   {lint / (count - 1):8.2f}")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 200,
        int(sys.argv[2]) if len(sys.argv) > 2 else 5,
    )
