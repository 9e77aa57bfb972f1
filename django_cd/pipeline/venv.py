"""One virtualenv per requirements content, shared by the releases that match it.

The hash covers the requirements file, the files it includes (``-r``/``-c``),
the content of local paths it installs, and the Python version, so two
releases share a venv only when they would install the same thing. An
editable local path (``-e ./pkg``) points into one release, so it gets a venv
of its own: the release id goes into the hash.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from dataclasses import dataclass

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.host import Host
from django_cd.pipeline.release import VENV_LINK, Release

PIP_TIMEOUT = 900.0


@dataclass(frozen=True)
class VenvResult:
    hash: str
    path: str
    created: bool
    output: str


def requirements_hash(release: Release) -> str:
    """The content hash naming the venv ``release`` needs."""
    host, root = release.host, release.path
    digest = hashlib.sha256()
    python = host.run([host.python, "-c", "import sys; print(sys.version)"]).output
    digest.update(python.encode())
    _hash_requirements(host, root, release.env.requirements, digest, release.id, set())
    return digest.hexdigest()[:16]


def _hash_requirements(
    host: Host, root: str, relative: str, digest: hashlib._Hash, release_id: str, seen: set[str]
) -> None:
    path = posixpath.normpath(posixpath.join(root, relative))
    if path in seen:
        return
    seen.add(path)
    if not host.exists(path):
        raise StepFailed(
            "venv",
            f"The requirements file {relative} is not in the release. Fix the environment's "
            "'requirements' field or commit the file.",
        )
    text = host.read_text(path)
    digest.update(relative.encode() + b"\0" + text.encode() + b"\0")
    base = posixpath.dirname(relative)
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] in ("-r", "-c", "--requirement", "--constraint") and len(words) > 1:
            included = posixpath.join(base, words[1])
            _hash_requirements(host, root, included, digest, release_id, seen)
            continue
        editable = words[0] in ("-e", "--editable")
        target = words[1] if editable and len(words) > 1 else words[0]
        local = _local_path(target)
        if local is None:
            continue
        # Local paths are resolved from the repository root, where pip runs.
        digest.update(host.tree_digest(posixpath.join(root, local)).encode())
        if editable:
            digest.update(release_id.encode())


def _local_path(target: str) -> str | None:
    if target.startswith("file:"):
        target = target.removeprefix("file://").removeprefix("file:")
    if target.startswith((".", "/")):
        return target.split("[", 1)[0].split("#", 1)[0]
    return None


COMPLETE_MARKER = ".django-cd-complete"


def ensure_venv(release: Release) -> VenvResult:
    """Link the release to its venv, building the venv first when its hash is new."""
    host, layout = release.host, release.layout
    venv_hash = requirements_hash(release)
    path = posixpath.join(layout.venvs, venv_hash)
    created, output = False, ""
    if not host.exists(posixpath.join(path, COMPLETE_MARKER)):
        output = _build(release, path)
        created = True
    # Relative, so the link survives the root being reached through another path.
    host.switch_link(release.venv, posixpath.join("..", "..", "venvs", venv_hash))
    return VenvResult(venv_hash, path, created, output)


def _build(release: Release, path: str) -> str:
    host = release.host
    # Built in place (venv scripts hold absolute paths) and marked complete only
    # at the end: a failed install never leaves a venv a later deploy would reuse.
    host.remove(path)
    created = host.run([host.python, "-m", "venv", path], timeout=PIP_TIMEOUT)
    if not created.ok:
        host.remove(path)
        raise StepFailed("venv", "Creating the virtualenv failed.", created.output)
    requirements = posixpath.join(release.path, release.env.requirements)
    installed = host.run(
        [
            posixpath.join(path, "bin", "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            requirements,
        ],
        cwd=release.path,
        timeout=PIP_TIMEOUT,
    )
    if not installed.ok:
        host.remove(path)
        raise StepFailed(
            "venv",
            f"Installing {release.env.requirements} failed. Fix the requirements "
            "(the error is below) and deploy again.",
            installed.output,
        )
    host.write_text(posixpath.join(path, COMPLETE_MARKER), release.id + "\n")
    return installed.output


__all__ = ["VENV_LINK", "VenvResult", "ensure_venv", "requirements_hash"]
