"""The git repository deploys are made from (always local to the deployer)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from django_cd.pipeline.errors import PipelineError

TAG_PREFIX = "cd"


class Repository:
    """A git checkout: resolves refs, archives commits and tags deploys."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def find(cls, configured: str | None, base_dir: str | Path | None) -> Repository:
        """``DJANGO_CD["REPOSITORY"]``, or the git toplevel above ``BASE_DIR``."""
        start = configured or (str(base_dir) if base_dir else ".")
        try:
            top = _git(Path(start), "rev-parse", "--show-toplevel").strip()
        except PipelineError:
            raise PipelineError(
                f"{start} is not inside a git repository. Deploys are made from git "
                "commits: set DJANGO_CD['REPOSITORY'] to your checkout."
            ) from None
        return cls(top)

    def git(self, *args: str, stdin: bytes | None = None) -> str:
        return _git(self.path, *args, stdin=stdin)

    def resolve(self, ref: str) -> str:
        """The full SHA of ``ref``, or a ``PipelineError`` naming it."""
        if ref.startswith("-"):
            raise PipelineError(f"Ref {ref!r} is not a git ref. Use a branch, tag or commit.")
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except PipelineError:
            raise PipelineError(
                f"Ref {ref!r} does not exist in {self.path}. "
                "Use a branch, tag or commit that `git rev-parse` knows (fetch first?)."
            ) from None

    def dirty_files(self) -> list[str]:
        """Tracked files with local changes (untracked files are never deployed anyway)."""
        out = self.git("status", "--porcelain", "--untracked-files=no")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def archive(self, commit: str) -> bytes:
        """The tree of ``commit`` as a tar archive."""
        return _git_bytes(self.path, "archive", "--format=tar", commit)

    def identity(self) -> str | None:
        try:
            name = self.git("config", "user.name").strip()
            email = self.git("config", "user.email").strip()
        except PipelineError:
            return None
        return f"{name} <{email}>" if email else name

    def subject(self, commit: str) -> str:
        return self.git("log", "-1", "--format=%s", commit).strip()

    def tag(self, env_name: str, commit: str, message: str) -> str:
        """Tag ``commit`` as ``cd/<env>/<n>``, one more than the highest so far."""
        names = self.git("tag", "--list", f"{TAG_PREFIX}/{env_name}/*").split()
        pattern = re.compile(rf"^{TAG_PREFIX}/{re.escape(env_name)}/(\d+)$")
        numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
        name = f"{TAG_PREFIX}/{env_name}/{max(numbers, default=0) + 1}"
        self.git("tag", "-a", name, "-m", message, commit)
        return name


def _git(path: Path, *args: str, stdin: bytes | None = None) -> str:
    return _git_bytes(path, *args, stdin=stdin).decode(errors="replace")


def _git_bytes(path: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        completed = subprocess.run(
            ["git", "-C", str(path), *args],
            input=stdin,
            capture_output=True,
            check=False,
        )
    except OSError as error:
        raise PipelineError(f"git cannot run: {error}. Install git.") from None
    if completed.returncode != 0:
        detail = completed.stderr.decode(errors="replace").strip()
        raise PipelineError(f"git {' '.join(args[:2])} failed: {detail}")
    return completed.stdout
