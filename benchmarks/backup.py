"""The deploy's backup of a large PostgreSQL database, at pg_dump's default level and at 1.

    .venv/bin/python benchmarks/backup.py [--rows 1200000] [--repeat 5]

Creates a scratch database on 127.0.0.1:5432 with one table of ``--rows``
rows of hex text (about 190 bytes a row; 1.2 million rows make a database
of about 250 MB), then, alternating the order in each repetition, times what
the deploy's backup step runs in the sample project's release:

- ``manage.py dbbackup -O path``: the backup without ``backup_compression``
  (pg_dump's custom format at its default level);
- ``manage.py cdbackup --output path --compression 1``: with
  ``backup_compression: 1``.

Prints the medians with the range, the per-pair ratio of times, the files'
sizes and the load average. The scratch database is dropped at the end.
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
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def spread(values: list[float], digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    name = f"cd_bench_backup_{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="django-cd-backup-"))
    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(SERVER.replace("dbname=postgres", f"dbname={name}")) as db:
            db.execute(
                "CREATE TABLE notes AS SELECT g AS id, now() - g * interval '1 minute' AS at, "
                "md5(g::text) || ' ' || repeat(md5((g * 7)::text), 4) AS body "
                f"FROM generate_series(1, {options.rows}) AS g"
            )
            size = db.execute("SELECT pg_database_size(current_database())").fetchone()
        env_file = work / "bench.env"
        env_file.write_text(
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(40)}\n"
            f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/{name}\n"
            "DJANGO_ALLOWED_HOSTS=127.0.0.1\n"
        )
        environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.staging",
                   "DJANGO_ENV_FILE": str(env_file)}  # fmt: skip
        manage = [sys.executable, str(ROOT / "sampleproject" / "manage.py")]
        sides = {
            "dbbackup (default level)": lambda out: [*manage, "dbbackup", "--noinput", "-O", out],
            "cdbackup --compression 1": lambda out: [
                *manage, "cdbackup", "--output", out, "--compression", "1"
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {side: [] for side in sides}
        sizes: dict[str, int] = {}
        load_before = os.getloadavg()
        for n in range(options.repeat):
            order = list(sides) if n % 2 == 0 else list(reversed(sides))
            for side in order:
                out = str(work / f"{n}-{len(sizes)}-{side.split()[0]}.dump")
                started = time.monotonic()
                subprocess.run(sides[side](out), env=environ, check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip
                times[side].append(time.monotonic() - started)
                sizes[side] = os.path.getsize(out)
                os.unlink(out)
        load_after = os.getloadavg()
    finally:
        with psycopg.connect(SERVER, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    default, fast = times.values()
    ratios = [f / d for f, d in zip(fast, default, strict=True)]
    database_mb = (size[0] if size else 0) / 1e6
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)"
    print(f"database {database_mb:.0f} MB ({options.rows} rows); {options.repeat} pairs; {load}")
    print()
    print("| backup | seconds, median (range) | file |")
    print("|---|---|---|")
    for side, values in times.items():
        print(f"| {side} | {spread(values)} | {sizes[side] / 1e6:.1f} MB |")
    sizes_list = list(sizes.values())
    print()
    print(f"time ratio (level 1 / default), per pair: {spread(ratios)}; "
          f"size ratio {sizes_list[1] / sizes_list[0]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
