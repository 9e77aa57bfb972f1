"""Creating a testing instance from a PostgreSQL staging database (issue 15).

    .venv/bin/python benchmarks/instances.py [--rows 100000 1000000] [--repeat 5] [--create]

For each size, a staging-like database (a notes table: title, body of about 200
characters, author, timestamps; an index) is filled with ``--rows`` rows on the
local PostgreSQL, then each repetition copies it three ways, in an order that
rotates with the repetition, each into a new database that is dropped after:

- raw: ``pg_dump src | psql -q dst`` into an empty database (the seed's method);
- dump: django-cd's ``pg_dump -Fc -Z0 | pg_restore --single-transaction``;
- template: django-cd's ``CREATE DATABASE dst TEMPLATE src`` (no session open).

Reported: the median of each, the spread (min-max), and each method's median
ratio to raw over the repetitions' pairs. With ``--create``, the sample project
is deployed to staging on a PostgreSQL database of the first size, and
``manage.py instance create`` is timed from start until the instance answers
over HTTP (the venv is built once before, as on a CI host that keeps its pool).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import psycopg  # noqa: E402

from django_cd.instances import database  # noqa: E402

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
URL = "postgres://postgres@127.0.0.1:5432/"


def admin(sql: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        connection.execute(sql)


def fill(name: str, rows: int) -> float:
    admin(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as db:
        db.execute(
            "CREATE TABLE notes_note (id bigserial PRIMARY KEY, title varchar(120) NOT NULL, "
            "body text NOT NULL, author varchar(80) NOT NULL, pinned boolean NOT NULL, "
            "created_at timestamptz NOT NULL)"
        )
        db.execute(
            "INSERT INTO notes_note (title, body, author, pinned, created_at) "
            "SELECT 'Note ' || g, repeat(md5(g::text), 6), 'author' || (g %% 100), g %% 10 = 0, "
            "now() - g * interval '1 minute' FROM generate_series(1, %s) g",
            (rows,),
        )
        db.execute("CREATE INDEX notes_by_author ON notes_note (author, created_at)")
    return database.size_mb(database.Database.from_url(URL + name, "bench"))


def raw(source: str, target: str) -> None:
    admin(f'CREATE DATABASE "{target}"')
    dump = subprocess.Popen(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", source], stdout=subprocess.PIPE
    )
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", target],
        stdin=dump.stdout,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    assert dump.stdout is not None
    dump.stdout.close()
    assert dump.wait() == 0


def ours(method: str) -> Callable[[str, str], None]:
    def run(source: str, target: str) -> None:
        src = database.Database.from_url(URL + source, "bench")
        result = database.copy(src, src.renamed(target), method=method)
        assert result.method.startswith("CREATE" if method == "template" else "pg_dump")

    return run


METHODS: dict[str, Callable[[str, str], None]] = {
    "raw pg_dump \\| psql": raw,
    "dump (pg_dump -Fc \\| pg_restore)": ours("dump"),
    "template (CREATE DATABASE ... TEMPLATE)": ours("template"),
}


def copies(rows: int, repeat: int) -> None:
    source = f"cdbench_{secrets.token_hex(3)}"
    size = fill(source, rows)
    times: dict[str, list[float]] = {name: [] for name in METHODS}
    try:
        for n in range(repeat):
            names = list(METHODS)
            names = names[n % len(names) :] + names[: n % len(names)]
            for name in names:
                target = f"{source}_copy"
                started = time.perf_counter()
                METHODS[name](source, target)
                times[name].append(time.perf_counter() - started)
                admin(f'DROP DATABASE "{target}" WITH (FORCE)')
    finally:
        admin(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
    raw_times = times["raw pg_dump \\| psql"]
    print(f"\n{rows:,} rows ({size:.0f} MB), {repeat} repetitions, load {load()}\n")
    print("| method | median | spread (min-max) | median ratio to raw |")
    print("|---|---|---|---|")
    for name, values in times.items():
        ratio = statistics.median(v / r for v, r in zip(values, raw_times, strict=True))
        print(
            f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f}-"
            f"{max(values):.2f} s | {ratio:.2f}x |"
        )


def create(rows: int, repeat: int) -> None:
    """The sample project on PostgreSQL: time ``instance create`` until it answers."""
    from tests.instances_support import InstanceProject
    from tests.pipeline_support import get

    with tempfile.TemporaryDirectory() as tmp:
        project = InstanceProject(Path(tmp), engine="postgresql", max_instances=repeat + 1)
        admin(f'CREATE DATABASE "{project.staging_db}"')
        try:
            code, _, stderr = project.deploy()
            assert code == 0, stderr
            staging = f"host=127.0.0.1 user=postgres dbname={project.staging_db}"
            with psycopg.connect(staging) as db:
                db.execute(
                    "INSERT INTO notes_note (title, body, author, pinned, created_at) "
                    "SELECT 'Note ' || g, repeat(md5(g::text), 6), 'a', false, now() "
                    "FROM generate_series(1, %s) g",
                    (rows,),
                )
            # The template's venv pool: built once, as a CI host keeps it.
            project.link_venvs("testing", project.root("staging") / "venvs")
            totals, copies_ = [], []
            for n in range(repeat):
                started = time.perf_counter()
                code, data, stderr = project.instance(
                    "create", "--env=testing", f"bench-{n}", "--ref", "main", "--json"
                )
                assert code == 0, stderr
                status, _, _ = get(data["url"])
                totals.append(time.perf_counter() - started)
                copies_.append(data["copy"]["seconds"])
                assert status == 200
                project.instance("destroy", "--env=testing", f"bench-{n}")
        finally:
            project.stop_servers()
            admin(f'DROP DATABASE IF EXISTS "{project.staging_db}" WITH (FORCE)')
    print(f"\ninstance create until it answers, staging with {rows:,} notes, load {load()}\n")
    print("| | median | spread (min-max) |")
    print("|---|---|---|")
    print(f"| total, command start to HTTP 200 | {statistics.median(totals):.1f} s | "
          f"{min(totals):.1f}-{max(totals):.1f} s |")  # fmt: skip
    print(f"| of which the database copy | {statistics.median(copies_):.2f} s | "
          f"{min(copies_):.2f}-{max(copies_):.2f} s |")  # fmt: skip


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--create", action="store_true")
    args = parser.parse_args()
    for rows in args.rows:
        copies(rows, args.repeat)
    if args.create:
        create(args.rows[0], 3)


if __name__ == "__main__":
    main()
