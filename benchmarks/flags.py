"""Benchmark: ``django_cd.flags.is_active`` against waffle's ``flag_is_active``.

One process, Django configured in memory (SQLite, LocMemCache), 50 waffle
flags that are selective (staff and superusers; the user is neither, so
every check walks the conditions). A "request" is a fresh request object for
a logged-in user that checks 1, 10 or 50 flags. Both sides read the same
waffle rows. After a warm-up (steady state: every cache filled), each run
times REQUESTS requests per side and size, alternating sides, and counts the
database queries (``CaptureQueriesContext``) and cache calls (a counting
cache backend) of one more request. Prints each run, then the medians, the
spread and the load average.

    .venv/bin/python benchmarks/flags.py [--runs 7] [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache

REPO_ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 10, 50)
TARGET_RATIO = 3.0


class CountingCache(LocMemCache):
    """LocMemCache that counts every call a client makes (one call, one round trip)."""

    calls = 0

    def _count(self, method: str, *args: Any, **kwargs: Any) -> Any:
        CountingCache.calls += 1
        return getattr(super(), method)(*args, **kwargs)

    def get(self, *a: Any, **k: Any) -> Any:
        return self._count("get", *a, **k)

    def get_many(self, *a: Any, **k: Any) -> Any:
        return self._count("get_many", *a, **k)

    def set(self, *a: Any, **k: Any) -> Any:
        return self._count("set", *a, **k)

    def add(self, *a: Any, **k: Any) -> Any:
        return self._count("add", *a, **k)

    def set_many(self, *a: Any, **k: Any) -> Any:
        return self._count("set_many", *a, **k)

    def delete(self, *a: Any, **k: Any) -> Any:
        return self._count("delete", *a, **k)


def configure() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    settings.configure(
        SECRET_KEY="benchmark-only",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "waffle",
            "django_cd",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "__main__.CountingCache"}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        DEBUG=False,
    )
    django.setup()


def setup_data() -> Any:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from waffle.models import Flag

    call_command("migrate", verbosity=0)
    for i in range(max(SIZES)):
        Flag.objects.create(name=f"flag_{i}", everyone=None, staff=True, superusers=True)
    return User.objects.create_user("reader", password="x")


def checkers() -> dict[str, Callable[[Any, str], bool]]:
    from waffle import flag_is_active

    from django_cd import flags

    return {"waffle": flag_is_active, "django_cd": lambda r, n: flags.is_active(n, r)}


def make_request(user: Any) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1")
    request.user = user
    return request


def one_request(check: Callable[[Any, str], bool], user: Any, size: int) -> None:
    request = make_request(user)
    for i in range(size):
        if check(request, f"flag_{i}"):
            raise AssertionError("every flag is off for this user on both sides")


def time_side(check: Callable[[Any, str], bool], user: Any, size: int, requests: int) -> float:
    """Microseconds per check over ``requests`` requests."""
    started = time.perf_counter()
    for _ in range(requests):
        one_request(check, user, size)
    return (time.perf_counter() - started) / (requests * size) * 1e6


def counts(check: Callable[[Any, str], bool], user: Any, size: int) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    CountingCache.calls = 0
    with CaptureQueriesContext(connection) as queries:
        one_request(check, user, size)
    return len(queries), CountingCache.calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    options = parser.parse_args()
    configure()
    user = setup_data()
    sides = checkers()
    for check in sides.values():  # warm-up: every cache filled
        for size in SIZES:
            one_request(check, user, size)
    load = os.getloadavg()
    results: dict[tuple[str, int], list[float]] = {
        k: [] for k in ((s, n) for s in sides for n in SIZES)
    }
    for run in range(1, options.runs + 1):
        line = []
        for size in SIZES:
            order = list(sides.items()) if run % 2 else list(reversed(sides.items()))
            for name, check in order:
                results[(name, size)].append(time_side(check, user, size, options.requests))
            line.append(
                f"{size:>2} flags: waffle {results[('waffle', size)][-1]:6.2f} us, "
                f"django_cd {results[('django_cd', size)][-1]:5.2f} us"
            )
        print(f"run {run}: " + "; ".join(line))
    print(
        f"\nload average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        "| flags per request | side | us per check (median) | spread (min-max) "
        "| queries per request | cache calls per request |"
    )
    print("|---|---|---|---|---|---|")
    for size in SIZES:
        for name, check in sides.items():
            values = results[(name, size)]
            queries, cache_calls = counts(check, user, size)
            print(
                f"| {size} | {name} | {statistics.median(values):.2f} | "
                f"{min(values):.2f}-{max(values):.2f} | {queries} | {cache_calls} |"
            )
    ratio = statistics.median(results[("waffle", 10)]) / statistics.median(
        results[("django_cd", 10)]
    )
    ratios = [
        w / d for w, d in zip(results[("waffle", 10)], results[("django_cd", 10)], strict=True)
    ]
    print(
        f"\nat 10 flags django_cd is {ratio:.1f}x faster per check than waffle "
        f"(per-run ratios {min(ratios):.1f}-{max(ratios):.1f}; target >= {TARGET_RATIO}x)"
    )
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
