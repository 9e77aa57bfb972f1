"""Release virtualenvs (issue 9 §3): a local requirement outside the repository is
hashed by what git tracks there, and a change to it only reinstalls it, in a
copy of the current venv. Real git, real venvs, real pip."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from django_cd import conf
from django_cd.pipeline.host import LocalHost
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.release import Release
from django_cd.pipeline.venv import _hashes, _seed, ensure_venv, requirements_hash
from tests.pipeline_support import commit_all, git

ENV = conf.Environment(
    "staging", "settings.staging", "/unused", ("local",), (), conf.Server("none"), "parallel",
    "auto", "manage.py", "requirements.txt", None, (), (), None, (), (),
)  # fmt: skip


def local_package(base: Path, value: int) -> Path:
    """A package in its own git repository next to the project (``../localpkg``)."""
    package = base / "localpkg"
    (package / "localpkg").mkdir(parents=True, exist_ok=True)
    (package / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "localpkg"
            version = "1.0"

            [project.scripts]
            localpkg-value = "localpkg:main"
            """
        )
    )
    (package / "localpkg" / "__init__.py").write_text(
        f"VALUE = {value}\n\n\ndef main():\n    print(VALUE)\n"
    )
    if not (package / ".git").exists():
        # What pip's build leaves there is not tracked, as in any real package.
        (package / ".gitignore").write_text("build/\n*.egg-info/\n")
        git(package, "init", "-q", "-b", "main")
        git(package, "config", "user.email", "dee@example.com")
        git(package, "config", "user.name", "Dee")
    commit_all(package, f"value {value}")
    return package


def release(base: Path, release_id: str, requirements: str) -> Release:
    """A release directory under ``base/deploy`` holding only the requirements file."""
    host = LocalHost()
    layout = Layout(str(base / "deploy"))
    made = Release(ENV, host, layout, release_id)
    Path(made.path).mkdir(parents=True)
    (Path(made.path) / "requirements.txt").write_text(requirements)
    return made


def make_current(made: Release) -> None:
    current = Path(made.layout.current)
    current.unlink(missing_ok=True)
    current.symlink_to(Path("releases") / made.id)


def run(venv: Path, *argv: str) -> str:
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_hash_covers_what_git_tracks_beside_the_repository(tmp_path: Path) -> None:
    package = local_package(tmp_path, 1)
    # The repository sits at tmp_path/deploy/releases/r1; ../../../localpkg is beside it.
    made = release(tmp_path, "r1", "../../../localpkg\n")
    first = requirements_hash(made)
    # Untracked files and a virtualenv inside the package change nothing.
    (package / "notes.txt").write_text("scratch")
    (package / ".venv" / "lib").mkdir(parents=True)
    (package / ".venv" / "lib" / "big.bin").write_bytes(os.urandom(1024))
    assert requirements_hash(made) == first
    # Tracked content does, committed or not.
    (package / "localpkg" / "__init__.py").write_text("VALUE = 2\n")
    assert requirements_hash(made) != first
    # The text hash (what decides whether a venv can be a copy) ignores the content.
    assert (
        _hashes(made).text.hexdigest()
        == _hashes(release(tmp_path, "r2", "../../../localpkg\n")).text.hexdigest()
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_changed_local_package_reinstalls_only_it(tmp_path: Path) -> None:
    local_package(tmp_path, 1)
    requirements = "../../../localpkg\n"
    first = release(tmp_path, "r1", requirements)
    built = ensure_venv(first)
    assert built.created
    old_venv = Path(built.path)
    assert run(old_venv, "localpkg-value") == "1"
    make_current(first)

    local_package(tmp_path, 2)
    second = release(tmp_path, "r2", requirements)
    rebuilt = ensure_venv(second)
    assert rebuilt.created and rebuilt.hash != built.hash
    assert rebuilt.output.startswith(f"copied the packages of {built.hash}\n")
    new_venv = Path(rebuilt.path)
    # The copy runs from its own interpreter, with the new code; the old venv is intact.
    assert run(new_venv, "localpkg-value") == "2"
    assert (new_venv / "bin" / "localpkg-value").read_text().startswith(f"#!{new_venv}/bin/python")
    assert run(old_venv, "localpkg-value") == "1"
    # A third release of the same content reuses the venv.
    assert not ensure_venv(release(tmp_path, "r3", requirements)).created

    # Another requirements text never starts from a copy: a full build.
    changed = release(tmp_path, "r4", requirements + "# pinned later\n")
    assert _seed(changed, _hashes(changed).text.hexdigest()) is None
    assert _seed(second, _hashes(second).text.hexdigest()) == str(old_venv)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_local_package_that_needs_something_new_gets_it(tmp_path: Path) -> None:
    """The copy skips pip's full pass only while ``pip check`` finds every dependency."""
    package = local_package(tmp_path, 1)
    requirements = "../../../localpkg\n"
    first = release(tmp_path, "r1", requirements)
    ensure_venv(first)
    make_current(first)

    other = tmp_path / "otherpkg"
    (other / "otherpkg").mkdir(parents=True)
    (other / "otherpkg" / "__init__.py").write_text("NAME = 'other'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "otherpkg"\nversion = "1.0"\n'
    )
    pyproject = package / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'version = "1.0"\n',
            f'version = "1.0"\ndependencies = ["otherpkg @ {other.as_uri()}"]\n',
        )
    )
    commit_all(package, "needs otherpkg")
    rebuilt = ensure_venv(release(tmp_path, "r2", requirements))
    assert rebuilt.output.startswith("copied the packages of ")
    assert "localpkg 1.0 requires otherpkg, which is not installed." in rebuilt.output
    assert (
        run(Path(rebuilt.path), "python", "-c", "import otherpkg; print(otherpkg.NAME)") == "other"
    )
