"""The content hash of a tree, as ``Host.tree_digest`` defines it.

Standard library only, and runnable as a script (``python - PATH [--tracked]``
with this file on stdin), so an SSH host computes the very same digest on the
remote machine as ``LocalHost`` does here: one definition, no second copy.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

#: Directories a tree digest never walks into: caches, virtualenvs, build output.
IGNORED_PARTS = frozenset(
    {"__pycache__", ".git", ".hg", ".venv", "venv", ".tox", ".nox", "node_modules",
     ".mypy_cache", ".ruff_cache", ".pytest_cache", "build", "dist"}
)  # fmt: skip


def tree_digest(path: str, *, tracked: bool = False) -> str:
    """A hash of every file's path and content under ``path``; see ``Host.tree_digest``."""
    base = Path(path)
    files = tracked_files(base) if tracked and base.is_dir() else None
    if files is None:
        files = [base] if base.is_file() else walk_files(base)
    digest = hashlib.sha256()
    for file in files:
        relative = file.relative_to(base).as_posix() if file != base else file.name
        try:
            content = file.read_bytes()
        except FileNotFoundError:  # tracked, but deleted in the working tree
            content = b"(deleted)"
        digest.update(relative.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def walk_files(base: Path) -> list[Path]:
    """Every file under ``base``, sorted, without descending into ``IGNORED_PARTS``."""
    found = []
    for directory, subdirectories, files in os.walk(base):
        subdirectories[:] = [
            d for d in subdirectories if d not in IGNORED_PARTS and not d.endswith(".egg-info")
        ]
        found += [Path(directory, f) for f in files if not f.endswith((".pyc", ".pyo"))]
    return sorted(found)


def tracked_files(base: Path) -> list[Path] | None:
    """The files git tracks under ``base``; None when ``base`` is not in a work tree."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(base), "ls-files", "-z", "--cached", "--", "."],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    return sorted(base / name for name in listed.stdout.decode().split("\0") if name)


if __name__ == "__main__":
    print(tree_digest(sys.argv[1], tracked="--tracked" in sys.argv[2:]))
