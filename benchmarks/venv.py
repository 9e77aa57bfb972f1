"""Requirements hashing and the venv rebuild after a one-line change in a local package.

    .venv/bin/python benchmarks/venv.py [--pairs 5] [--builds 3]

Hashing: the requirements of a release that installs this repository as a
local package from beside it (``../django-cd``-style: a git checkout with its
own ``.venv``, caches and build output, as a developer's checkout has),
hashed the way django-cd 0.1 did (every file under the path, read whole)
against today's (the files git tracks there), alternating, ``--pairs`` times;
and the sample project's requirements (no local path) with today's code.

Rebuild: a release whose requirements are the sample project's plus a small
local package beside the repository; after a one-line change to that package,
the next release's venv built from scratch (``python -m venv`` and ``pip
install -r``, what any change cost before) against today's (a copy of the
current venv, then only the local package reinstalled), alternating,
``--builds`` times. Medians, the spread (min-max) and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django_cd.pipeline import venv  # noqa: E402
from tests.test_venv import local_package, make_current, release  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_REQUIREMENTS = (REPO / "sampleproject" / "requirements.txt").read_text()


def old_tree_digest(path: str) -> str:
    """django-cd 0.1's digest of a local path: every file below it, caches included."""
    digest = hashlib.sha256()
    base = Path(path)
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    for file in files:
        relative = file.relative_to(base).as_posix() if file != base else file.name
        if any(part in ("__pycache__", ".git") for part in file.parts) or file.suffix == ".pyc":
            continue
        digest.update(relative.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def timed(action: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def spread(values: list[float], unit: str = "s") -> str:
    return (
        f"{statistics.median(values):.3f} {unit} ({min(values):.3f}-{max(values):.3f})"
        if unit == "s"
        else f"{statistics.median(values):.1f} ms ({min(values):.1f}-{max(values):.1f})"
    )


def hashing(base: Path, pairs: int) -> list[str]:
    # This repository stands in for ../django-cd: a link beside the release.
    (base / "django-cd").symlink_to(REPO)
    local = release(base, "h1", "../../../django-cd\n")
    sample = release(base, "h2", SAMPLE_REQUIREMENTS)
    full = str(base / "django-cd")
    files = sum(1 for p in REPO.rglob("*") if p.is_file())
    old, new, plain = [], [], []
    for _ in range(pairs):
        old.append(1000 * timed(old_tree_digest, full))
        new.append(1000 * timed(venv.requirements_hash, local))
        plain.append(1000 * timed(venv.requirements_hash, sample))
    return [
        f"| local path beside the repository ({files} files under it) | "
        f"{spread(old, 'ms')} (path digest only) | {spread(new, 'ms')} (whole hash) |",
        f"| the sample project's requirements (no local path) | | {spread(plain, 'ms')} |",
    ]


def rebuild(base: Path, builds: int) -> list[str]:
    requirements = SAMPLE_REQUIREMENTS + "../../../localpkg\n"
    local_package(base, 0)
    first = release(base, "r0", requirements)
    venv.ensure_venv(first)
    make_current(first)
    scratch, clone = [], []
    for n in range(1, builds + 1):
        local_package(base, n)
        fresh = release(base, f"s{n}", requirements)
        path = Path(first.layout.venvs) / f"scratch{n}"
        hashes = venv._hashes(fresh)
        hashes.text.update(b"never a seed")  # the old way: always from scratch
        scratch.append(timed(venv._build, fresh, str(path), hashes))
        shutil.rmtree(path)
        copied = release(base, f"c{n}", requirements)
        clone.append(timed(venv.ensure_venv, copied))
        make_current(copied)
    return [
        f"| venv after a one-line change in a local package | {spread(scratch)} "
        f"(from scratch) | {spread(clone)} (copy, reinstall the package) |",
        f"| ratio (median) | | {statistics.median(clone) / statistics.median(scratch):.2f}x |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--builds", type=int, default=3)
    options = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="venv-bench-") as tmp:
        for part in ("hash", "build"):
            (Path(tmp) / part).mkdir()
        rows = hashing(Path(tmp) / "hash", options.pairs)
        rows += rebuild(Path(tmp) / "build", options.builds)
    after = os.getloadavg()[0]
    print(f"Load average (1 min): {load_before[0]:.2f} before, {after:.2f} after.")
    print("| what | before | now |")
    print("|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
