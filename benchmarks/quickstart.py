"""README.md's quick start, timed: from ``django-admin startproject`` to the first
deploy answering.

    .venv/bin/python benchmarks/quickstart.py [--runs 3]

Each run makes a stock project in a temp dir with ``git init`` and a first commit,
then follows README.md's quick-start commands (read from the README, as
tests/test_quickstart.py does, with the same substitutions: django-cd-deploy from
a wheel of this checkout) up to the first ``manage.py deploy``, and stops when the
deployed site answers ``/admin/`` with the new release's ``X-Release``. Filling
``shared/.env`` is done by the script, so the time is the machine's, not a
person's. pip's cache is whatever the machine holds (warm after ``make``): the
first venv is built from it. Prints the median, the spread (min-max), each run,
and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.quickstart_support import (
    FILL,
    Browser,
    QuickStart,
    build_wheel,
    commands,
    env_example,
    hand_edits,
    port_range_lock,
)
from tests.test_quickstart import served


def one_run(wheel: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp, port_range_lock():
        quick = QuickStart(Path(tmp), wheel)
        try:
            start = time.perf_counter()
            quick.startproject()
            for step in commands():
                if step == FILL:
                    quick.fill_env_file(env_example())
                    continue
                result = quick.run(step)
                if step.startswith("python manage.py deploy"):
                    url, release = served(result.stdout)
                    status, headers, _ = Browser(url).request("/admin/")
                    assert (status, headers["X-Release"]) == (302, release)
                    return time.perf_counter() - start
            raise AssertionError("the quick start has no deploy")
        finally:
            quick.stop_servers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        times = [one_run(wheel) for _ in range(options.runs)]
    load_after = os.getloadavg()
    print(
        f"hand edits the README asks for (beyond cdinit --write and shared/.env): "
        f"{len(hand_edits())}"
    )
    print(
        f"startproject -> first deploy answering, median of {options.runs}: "
        f"{statistics.median(times):.1f} s (spread {min(times):.1f}-{max(times):.1f} s; "
        f"runs {', '.join(f'{t:.1f}' for t in times)})"
    )
    print(
        "load average (1, 5, 15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + "; after: "
        + " ".join(f"{x:.2f}" for x in load_after)
    )


if __name__ == "__main__":
    main()
