"""Test run outcomes, recorded where the deploy gate reads them.

Every ``manage.py test`` run through :class:`~django_cd.testing.PipelineRunner`
writes one JSON file per pipeline it gives evidence about::

    <repository root>/<DJANGO_CD["RESULTS_DIR"]>/<sha>/<pipeline>.json        # CI's evidence
    <repository root>/<DJANGO_CD["RESULTS_DIR"]>/<sha>/<pipeline>.local.json  # anything else

A run is evidence when the work tree was clean and the whole pipeline ran (no
test labels, ``-k``, ``--tag`` or ``--exclude-tag``); other runs go to the
``.local.json`` file so that a developer's partial or uncommitted run neither
replaces nor fakes CI's. docs/testing.md describes the format.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from django_cd import conf

FORMAT = 1
FULL_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Counts:
    """Outcomes of the tests of one pipeline (or of a whole run)."""

    run: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    expected_failures: int = 0
    unexpected_successes: int = 0

    @property
    def executed(self) -> int:
        """Tests that ran and were not skipped."""
        # Python 3.12+ does not count a test skipped by its class (setUpClass raising
        # SkipTest) in testsRun, but does list it in skipped: never below zero.
        return max(self.run - self.skipped, 0)

    @property
    def clean(self) -> bool:
        return not (self.failures or self.errors or self.unexpected_successes)


@dataclass(frozen=True)
class Result:
    """One pipeline's outcome in one run, as stored in ``<sha>/<pipeline>.json``."""

    sha: str
    dirty: bool
    complete: bool
    pipeline: str
    passed: bool
    counts: Counts
    started_at: str
    duration: float
    selection: dict[str, list[str]] = field(default_factory=dict)
    run_passed: bool = False
    settings_module: str = ""
    parallel: int = 1
    junit_xml: str | None = None
    coverage: dict[str, Any] | None = None
    format: int = FORMAT

    @property
    def evidence(self) -> bool:
        """True when the deploy gate may rely on this result: clean tree, whole pipeline."""
        return self.complete and not self.dirty

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        values = dict(data)
        values["counts"] = Counts(**values["counts"])
        return cls(**values)


@dataclass(frozen=True)
class Revision:
    """The commit a run tested, and whether the work tree differed from it."""

    root: Path
    sha: str
    dirty: bool


class NotARepository(Exception):
    """Results need a git commit to be filed under."""


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise NotARepository(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout.strip()


def repository_root() -> Path:
    """``DJANGO_CD["REPOSITORY"]``, else the git work tree holding BASE_DIR (or the cwd)."""
    start = _start_dir()
    if conf.get_config()["REPOSITORY"]:
        return start
    try:
        return Path(_git(start, "rev-parse", "--show-toplevel"))
    except (FileNotFoundError, NotADirectoryError) as error:
        raise NotARepository(str(error)) from None


def results_dir(root: Path | None = None) -> Path:
    """Where results live: ``RESULTS_DIR`` under the repository root."""
    return (root or repository_root()) / str(conf.get_config()["RESULTS_DIR"])


def current_revision() -> Revision:
    """HEAD of the repository and whether tracked files differ from it."""
    return RevisionProbe().revision()


class RevisionProbe:
    """Asks git about the work tree without waiting for the answer.

    A run starts the probe, runs its tests, then reads :meth:`revision`, so
    git's time hides behind the tests'. Untracked files do not make a tree
    dirty: CI writes its JUnit report and coverage data into the work tree, and
    those do not change what was tested.
    """

    def __init__(self) -> None:
        self.problem: str | None = None
        self.head: subprocess.Popen[str] | None = None
        self.status: subprocess.Popen[str] | None = None
        try:
            start = _start_dir()
            self.head = _spawn(start, "rev-parse", "--show-toplevel", "HEAD^{commit}")
            self.status = _spawn(start, "status", "--porcelain", "--untracked-files=no")
        except OSError as error:  # no git, or the directory is gone
            self.problem = str(error)

    def discard(self) -> None:
        """Wait for git and drop the answer (the run failed before it was needed)."""
        for process in (self.head, self.status):
            if process is not None:
                process.communicate(timeout=60)

    def revision(self) -> Revision:
        """The answer; ``NotARepository`` when there is no commit to file results under."""
        if self.head is None or self.status is None:
            raise NotARepository(self.problem or "git could not be started")
        head_out, head_err = self.head.communicate(timeout=60)
        status_out, status_err = self.status.communicate(timeout=60)
        if self.head.returncode != 0 or self.status.returncode != 0:
            message = (head_err or status_err).strip().splitlines() or ["git failed"]
            raise NotARepository(message[0])
        root, sha = head_out.splitlines()  # a root may hold spaces; a sha never does
        return Revision(root=Path(root), sha=sha, dirty=bool(status_out.strip()))


def _start_dir() -> Path:
    configured = conf.get_config()["REPOSITORY"]
    if configured:
        return Path(str(configured)).resolve()
    return Path(getattr(settings, "BASE_DIR", None) or Path.cwd())


def _spawn(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_path(sha: str, pipeline: str, *, evidence: bool, root: Path | None = None) -> Path:
    name = f"{pipeline}.json" if evidence else f"{pipeline}.local.json"
    return results_dir(root) / sha / name


def write(result: Result, root: Path) -> Path:
    """Store ``result`` atomically (a reader never sees half a file); return its path."""
    path = result_path(result.sha, result.pipeline, evidence=result.evidence, root=root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = results_dir(root) / ".gitignore"
    if not ignore.exists():
        # Results describe commits; they never belong in one.
        ignore.write_text("*\n")
    # Written beside its final name, then renamed over it in one step.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(result.to_json())
    os.replace(tmp, path)
    return path


def latest(sha: str, pipeline: str, *, local: bool = False) -> Result | None:
    """The last recorded result of ``pipeline`` for commit ``sha``, or None.

    By default only evidence (a whole pipeline on a clean tree) is read; pass
    ``local=True`` for the last partial or uncommitted run instead. ``sha`` may
    be any revision git understands (``HEAD``, a tag, a short sha); one git
    cannot resolve raises :class:`NotARepository`.
    """
    root = repository_root()
    full_sha = sha if FULL_SHA_RE.match(sha) else _resolve(root, sha)
    path = result_path(full_sha, pipeline, evidence=not local, root=root)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return Result.from_dict(data)


def _resolve(root: Path, revision: str) -> str:
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except NotARepository:
        raise NotARepository(
            f"{revision!r} is not a commit of the repository at {root}."
        ) from None


def passed(sha: str, pipelines: Iterable[str]) -> bool:
    """True when every one of ``pipelines`` has passed for commit ``sha``.

    This is the question the deploy gate asks: only evidence counts, and a
    pipeline that ran no test has not passed.
    """
    return not missing_or_failed(sha, pipelines)


def missing_or_failed(sha: str, pipelines: Iterable[str]) -> list[str]:
    """The pipelines of ``pipelines`` that have no passing evidence for ``sha``."""
    lacking = []
    for pipeline in pipelines:
        result = latest(sha, pipeline)
        if result is None or not result.passed:
            lacking.append(pipeline)
    return lacking
