"""Static files a release need not collect again: their inputs did not change.

``collectstatic`` into a new release's ``STATIC_ROOT`` copies (and, with a
manifest storage, hashes and compresses) every static file of every app,
although a code-only change leaves them all as they were. The *fingerprint*
of a release's static inputs is a hash of everything ``collectstatic``'s
output depends on:

- every file the finders list (the same ignore patterns as ``collectstatic``):
  its path and, under the release, its content; outside it (an installed
  package in the virtualenv), its size and modification time;
- the static settings (every ``STATIC*``, ``STATICFILES_*`` and
  ``WHITENOISE_*`` setting, and ``STORAGES["staticfiles"]``), the storage
  class's source file, and Django's version.

When it equals the previous release's and both collect into local
directories, the new release copies the previous release's collected files
instead of collecting (and post-processing) them again: the same bytes, in a
fraction of the time. Copies, not hard links: a later step that writes a file
in place (a compressor's manifest) must never change the release a rollback
goes back to. Any doubt runs ``collectstatic``.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
from pathlib import Path

#: Written into a collected ``STATIC_ROOT``: the fingerprint it was collected for.
STAMP = ".django-cd-static"


def fingerprint(release_dir: str) -> str:
    """The hash of the static inputs, as the settings and finders of this process see them."""
    import django
    from django.apps import apps
    from django.conf import settings
    from django.contrib.staticfiles import finders
    from django.core.files.storage import storages

    digest = hashlib.sha256()
    release = os.path.realpath(release_dir) + os.sep
    here = (release_dir.rstrip(os.sep) + os.sep, release)

    def add(*parts: object) -> None:
        text = repr(parts)
        for prefix in here:  # STATIC_ROOT and the like name the release: not an input
            text = text.replace(prefix, "<release>/")
        digest.update(text.encode() + b"\0")

    add("django", django.get_version())
    for name in sorted(dir(settings)):
        if name.startswith(("STATIC", "WHITENOISE_")):
            add(name, getattr(settings, name))
    add("STORAGES", getattr(settings, "STORAGES", {}).get("staticfiles"))
    storage_class = type(storages["staticfiles"])
    add("storage", storage_class.__module__, storage_class.__qualname__, _source(storage_class))
    ignore = apps.get_app_config("staticfiles").ignore_patterns  # type: ignore[attr-defined]
    for finder in finders.get_finders():
        for path, storage in finder.list(ignore):
            source = os.path.realpath(storage.path(path))
            add(type(finder).__name__, path, _content_key(source, release))
    return digest.hexdigest()


def _source(cls: type) -> str:
    """A hash of the file that defines ``cls`` (a project's own storage changes with it)."""
    try:
        file = inspect.getsourcefile(cls)
    except TypeError:
        return ""
    if file is None:
        return ""
    return hashlib.sha256(Path(file).read_bytes()).hexdigest()


def _content_key(source: str, release: str) -> object:
    stat = os.stat(source)
    if source.startswith(release):
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()
    # Installed packages do not change under a virtualenv; a reinstall changes the times.
    return (stat.st_size, stat.st_mtime_ns)


def reuse(previous_root: str, root: str, wanted: str) -> int | None:
    """Copy ``previous_root``'s collected files into ``root`` when they were collected for
    the fingerprint ``wanted``: how many; None (``root`` untouched) when they cannot be
    trusted."""
    stamp = Path(previous_root, STAMP)
    try:
        if stamp.read_text().strip() != wanted:
            return None
    except OSError:
        return None
    if os.path.realpath(previous_root) == os.path.realpath(root):
        return 0  # one shared STATIC_ROOT: it holds this collection already
    if os.path.lexists(root) and any(os.scandir(root)):
        return None  # something is there already: collectstatic knows how to merge
    copied: list[str] = []

    def copy(source: str, target: str) -> None:
        shutil.copy2(source, target)
        copied.append(target)

    shutil.copytree(previous_root, root, copy_function=copy, dirs_exist_ok=True)
    return len(copied)


def stamp(root: str, value: str) -> None:
    """Record what ``root`` was collected for (replaced atomically: no stale stamp)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    path = Path(root, STAMP)
    temporary = path.with_name(STAMP + ".tmp")
    temporary.write_text(value + "\n")
    os.replace(temporary, path)
