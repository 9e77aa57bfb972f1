"""Requests failed, and latency, while a deploy or a rollback reloads the app server.

    .venv/bin/python benchmarks/reload.py [--repeat 5] [--clients 4] [--servers gunicorn uwsgi]

For each server type, a scratch git repository of the sample project is
deployed once (SQLite, the server on a free loopback port, one worker).
Then, under real HTTP load (``--clients`` threads opening a connection per
request plus as many keeping one alive, see ``tests/servers_support.py``),
each repetition times three phases, from command start until 0.3 s after it
returned:

- deploy: ``manage.py deploy`` of a code-only commit (gunicorn: USR2
  handover to a new master; uWSGI: chain reload through the master FIFO);
- rollback: ``manage.py rollback`` back to the release before;
- naive restart: ``manage.py server stop`` then ``server start``, what a
  script that restarts the server does.

Per phase: failed requests (no answer, or not 200), and p50 / p99 / max
latency of all requests in the window. Medians over the repetitions with
the spread (min-max); the load average before and after. Output: the
Markdown table BENCHMARKS.md holds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pipeline_support import Project, set_title
from tests.servers_support import (
    Load,
    Result,
    failures,
    latency_summary,
    rollback,
)

PHASES = ("deploy", "rollback", "naive restart")


def phase(load: Load, action: Callable[[], None]) -> list[Result]:
    mark = load.mark()
    action()
    time.sleep(0.3)
    return load.results[mark : load.mark()]


def measure(
    server: str, repeat: int, clients: int, base: Path
) -> dict[str, list[dict[str, float]]]:
    project = Project(base / server, server=server)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in PHASES}
    try:
        code, _, stderr = project.deploy()
        if code:
            raise SystemExit(stderr)
        with Load(project.url("staging"), clients=clients) as load:
            time.sleep(0.5)
            for run in range(repeat):

                def deploy(run: int = run) -> None:
                    set_title(project, f"Benchmark {run}")
                    code, _, stderr = project.deploy()
                    if code:
                        raise SystemExit(stderr)

                def back() -> None:
                    code, _, stderr = rollback(project)
                    if code:
                        raise SystemExit(stderr)

                def restart() -> None:
                    for action in ("stop", "start"):
                        result = project.manage("server", action, "--env=staging")
                        if result.returncode:
                            raise SystemExit(result.stderr)

                for name, action in zip(PHASES, (deploy, back, restart), strict=True):
                    results = phase(load, action)
                    rows[name].append(
                        {
                            "requests": len(results),
                            "failed": len(failures(results)),
                            **latency_summary(results),
                        }
                    )
    finally:
        project.stop_servers()
    return rows


def cell(values: list[float], digits: int = 0) -> str:
    middle = statistics.median(values)
    return f"{middle:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4, help="of each kind")
    parser.add_argument("--servers", nargs="+", default=["gunicorn", "uwsgi"])
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="django-cd-bench-") as base:
        for server in args.servers:
            results[server] = measure(server, args.repeat, args.clients, Path(base))
    load_after = os.getloadavg()
    print(
        f"`{' '.join(['benchmarks/reload.py', *sys.argv[1:]])}`, {args.repeat} repetitions, "
        f"{args.clients}+{args.clients} clients; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f} (1 min), {os.cpu_count()} cores."
    )
    print()
    print("| server | phase | requests | failed | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for server, rows in results.items():
        for name in PHASES:
            runs = rows[name]
            print(
                f"| {server} | {name} | {cell([r['requests'] for r in runs])} | "
                f"{cell([r['failed'] for r in runs])} | {cell([r['p50'] for r in runs], 1)} | "
                f"{cell([r['p99'] for r in runs])} | {cell([r['max'] for r in runs])} |"
            )  # fmt: skip


if __name__ == "__main__":
    main()
