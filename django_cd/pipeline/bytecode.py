"""A release's bytecode, compiled once when it is uploaded, as ``Host.byte_compile``
defines it.

A release's processes (its agent, each app-server worker, every command) run
with ``PYTHONDONTWRITEBYTECODE``: the deploy writes a release's tree, its
processes do not. Without ``.pyc`` files each of them would compile every
module of the project it imports, at every start. So the upload compiles the
release once, into hash-checked ``.pyc`` files (valid while the source's
content is the same, whatever its timestamps: ``git archive`` gives every file
the commit's time). A file whose content the previous release had takes that
release's ``.pyc`` (a hard link) instead: a code-only deploy compiles only what
the commit changed.

Standard library only, and runnable as a script (``python - RELEASE [PREVIOUS]``
with this file on stdin), so an SSH host compiles with its own Python, for its
own version, exactly as ``LocalHost`` does here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import shutil
import sys
import warnings

#: Directories never compiled: virtualenvs, version control, front-end packages.
SKIPPED_DIRECTORIES = frozenset(
    {"__pycache__", ".git", ".hg", ".venv", "venv", ".tox", ".nox", "node_modules"}
)
#: A ``.pyc`` header's flags for "hash-based, checked against the source".
CHECKED_HASH_FLAGS = 0b11


def byte_compile(release: str, previous: str | None = None) -> dict[str, int]:
    """Compile every ``.py`` file of ``release``; carry over ``previous``'s ``.pyc``
    where the source is the same. Counts of ``compiled``, ``reused`` and ``failed``
    (a file Python cannot compile: left to fail, or not, where it is imported)."""
    counts = {"compiled": 0, "reused": 0, "failed": 0}
    made: set[str] = set()  # the __pycache__ directories known to exist
    for source in python_files(release):
        target = importlib.util.cache_from_source(source)
        if previous is not None:
            earlier = os.path.join(previous, os.path.relpath(source, release))
            if _reuse(earlier, source, target, made):
                counts["reused"] += 1
                continue
        try:
            with warnings.catch_warnings():  # a SyntaxWarning is the import's to show
                warnings.simplefilter("ignore")
                py_compile.compile(
                    source,
                    cfile=target,
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                )
        except (py_compile.PyCompileError, OSError):
            counts["failed"] += 1
        else:
            counts["compiled"] += 1
    return counts


def python_files(root: str) -> list[str]:
    """The ``.py`` files under ``root``, outside ``SKIPPED_DIRECTORIES`` (and not
    through symbolic links: a release's ``.venv`` is one)."""
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in SKIPPED_DIRECTORIES]
        found += [os.path.join(directory, name) for name in files if name.endswith(".py")]
    return sorted(found)


def _reuse(earlier: str, source: str, target: str, made: set[str]) -> bool:
    """Link ``earlier``'s ``.pyc`` to ``target`` if it was compiled, by this Python,
    from what ``source`` holds now."""
    cached = importlib.util.cache_from_source(earlier)
    try:
        with open(cached, "rb") as file:
            header = file.read(16)
        with open(source, "rb") as file:
            source_hash = importlib.util.source_hash(file.read())
    except OSError:
        return False
    if header != (
        importlib.util.MAGIC_NUMBER + CHECKED_HASH_FLAGS.to_bytes(4, "little") + source_hash
    ):
        return False
    directory = os.path.dirname(target)
    if directory not in made:
        os.makedirs(directory, exist_ok=True)
        made.add(directory)
    try:
        os.link(cached, target)
    except FileExistsError:
        return False
    except OSError:  # another file system, or links not allowed: a copy does
        shutil.copyfile(cached, target)
    return True


if __name__ == "__main__":
    print(json.dumps(byte_compile(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)))
