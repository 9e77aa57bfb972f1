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
from dataclasses import dataclass, field

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.host import CommandResult, Host
from django_cd.pipeline.release import VENV_LINK, Release

PIP_TIMEOUT = 900.0


@dataclass(frozen=True)
class VenvResult:
    hash: str
    path: str
    created: bool
    output: str


@dataclass
class _Hashes:
    """What a venv is named by (``full``), and the same without local packages'
    content (``text``): two venvs of one ``text`` differ only in local packages."""

    full: hashlib._Hash = field(default_factory=hashlib.sha256)
    text: hashlib._Hash = field(default_factory=hashlib.sha256)
    local: list[str] = field(default_factory=list)

    def update(self, data: bytes) -> None:
        self.full.update(data)
        self.text.update(data)


def requirements_hash(release: Release) -> str:
    """The content hash naming the venv ``release`` needs."""
    return _hashes(release).full.hexdigest()[:16]


def _hashes(release: Release) -> _Hashes:
    host = release.host
    hashes = _Hashes()
    hashes.update(_python_version(host).encode())
    _hash_requirements(host, release.path, release.env.requirements, hashes, release.id, set())
    return hashes


_PYTHON_VERSIONS: dict[tuple[str, str], str] = {}


def _python_version(host: Host) -> str:
    """``sys.version`` of the Python that builds the host's venvs, asked once per process."""
    key = (host.name, host.python)
    if key not in _PYTHON_VERSIONS:
        result = host.run([host.python, "-c", "import sys; print(sys.version)"])
        if not result.ok:
            raise StepFailed("venv", f"{host.python} does not run on {host.name}.", result.output)
        _PYTHON_VERSIONS[key] = result.output
    return _PYTHON_VERSIONS[key]


def _hash_requirements(
    host: Host, root: str, relative: str, digest: _Hashes, release_id: str, seen: set[str]
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
        # Local paths are resolved from the repository root, where pip runs. Inside
        # the release they hold what git archive put there; outside it (a package
        # next to the repository, -e ../django-cd), what git tracks there, so a
        # virtualenv or a build directory beside the code changes nothing.
        full = posixpath.normpath(posixpath.join(root, local))
        inside = full == root or full.startswith(root.rstrip("/") + "/")
        digest.full.update(host.tree_digest(full, tracked=not inside).encode())
        if editable and inside:
            digest.update(release_id.encode())
        elif not editable:
            digest.local.append(local)


def _local_path(target: str) -> str | None:
    if target.startswith("file:"):
        target = target.removeprefix("file://").removeprefix("file:")
    if target.startswith((".", "/")):
        return target.split("[", 1)[0].split("#", 1)[0]
    return None


COMPLETE_MARKER = ".django-cd-complete"
#: In a venv: the hash of its requirements without local packages' content.
TEXT_HASH_FILE = ".django-cd-requirements"


def ensure_venv(release: Release) -> VenvResult:
    """Link the release to its venv, building the venv first when its hash is new."""
    host, layout = release.host, release.layout
    hashes = _hashes(release)
    venv_hash = hashes.full.hexdigest()[:16]
    path = posixpath.join(layout.venvs, venv_hash)
    created, output = False, ""
    if not host.exists(posixpath.join(path, COMPLETE_MARKER)):
        output = _build(release, path, hashes)
        created = True
    # Relative, so the link survives the root being reached through another path.
    host.switch_link(release.venv, posixpath.join("..", "..", "venvs", venv_hash))
    return VenvResult(venv_hash, path, created, output)


def _build(release: Release, path: str, hashes: _Hashes) -> str:
    host = release.host
    # Built in place (venv scripts hold absolute paths) and marked complete only
    # at the end: a failed install never leaves a venv a later deploy would reuse.
    host.remove(path)
    text_hash = hashes.text.hexdigest()
    seed = _seed(release, text_hash)
    python = posixpath.join(path, "bin", "python")
    try:
        if seed is None:
            _run(release, [host.python, "-m", "venv", path], "Creating the virtualenv failed.")
            output = ""
        else:
            # Only local packages changed: start from a copy of the current venv and
            # reinstall just them (seconds, not a full install).
            output = _clone(release, seed, path)
            output += _pip(release, python, "--force-reinstall", "--no-deps", *hashes.local).output
            # The same requirements text, so the rest is installed: unless the local
            # packages now need something new (pip check says), pip has nothing to do.
            check = release.host.run([python, "-m", "pip", "check"], cwd=release.path)
            if check.ok:
                return _complete(release, path, text_hash, output)
            output += check.output
        output += _pip(release, python, "-r", release.env.requirements).output
    except StepFailed:
        host.remove(path)
        raise
    return _complete(release, path, text_hash, output)


def _complete(release: Release, path: str, text_hash: str, output: str) -> str:
    """Mark the venv at ``path`` as built for ``text_hash``: reusable from now on."""
    release.host.write_text(posixpath.join(path, TEXT_HASH_FILE), text_hash + "\n")
    release.host.write_text(posixpath.join(path, COMPLETE_MARKER), release.id + "\n")
    return output


def _pip(release: Release, python: str, *args: str) -> CommandResult:
    return _run(
        release,
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *args],
        f"Installing {release.env.requirements} failed. Fix the requirements "
        "(the error is below) and deploy again.",
    )


def _run(release: Release, argv: list[str], failure: str) -> CommandResult:
    # pip runs in the repository root, where the requirements' local paths start.
    result = release.host.run(argv, cwd=release.path, timeout=PIP_TIMEOUT)
    if not result.ok:
        raise StepFailed("venv", failure, result.output)
    return result


def _seed(release: Release, text_hash: str) -> str | None:
    """The current release's venv, when it was built from the same requirements text."""
    host, layout = release.host, release.layout
    target = host.readlink(posixpath.join(layout.current, VENV_LINK))
    if target is None:
        return None
    seed = posixpath.join(layout.venvs, posixpath.basename(target))
    marker = posixpath.join(seed, TEXT_HASH_FILE)
    if not host.exists(posixpath.join(seed, COMPLETE_MARKER)) or not host.exists(marker):
        return None
    return seed if host.read_text(marker).strip() == text_hash else None


def _clone(release: Release, seed: str, path: str) -> str:
    """A new venv at ``path`` holding ``seed``'s packages and scripts."""
    host = release.host
    _run(
        release,
        [host.python, "-m", "venv", "--without-pip", path],
        "Creating the virtualenv failed.",
    )
    for lib in host.listdir(posixpath.join(seed, "lib")):
        site = posixpath.join("lib", lib, "site-packages")
        _run(
            release,
            ["cp", "-a", posixpath.join(seed, site, "."), posixpath.join(path, site)],
            f"Copying {seed} failed.",
        )
    # The console scripts too (-n: not the new venv's own python and activate files),
    # then each names its interpreter by absolute path: point those at ours.
    bin_new = posixpath.join(path, "bin")
    _run(
        release,
        ["cp", "-a", "-n", posixpath.join(seed, "bin", "."), bin_new],
        f"Copying {seed} failed.",
    )
    for name in host.listdir(bin_new):
        script = posixpath.join(bin_new, name)
        try:
            text = host.read_text(script)
        except (UnicodeDecodeError, IsADirectoryError):
            continue  # a compiled program, or a directory: nothing names the venv
        first, newline, rest = text.partition("\n")
        if first.startswith("#!") and seed in first:
            host.write_text(script, first.replace(seed, path) + newline + rest, mode=0o750)
    return f"copied the packages of {posixpath.basename(seed)}\n"


__all__ = ["VENV_LINK", "VenvResult", "ensure_venv", "requirements_hash"]
