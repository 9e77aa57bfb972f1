"""The file changes cdinit makes, and the lines it leaves to the user."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from django_cd.cdinit.facts import ProjectError


@dataclass
class FileChange:
    """One file cdinit writes: ``old`` is None for a new file."""

    path: Path
    old: str | None
    new: str
    mode: int | None = None

    def diff(self, base: Path) -> str:
        inside = self.path.is_relative_to(base)
        name = self.path.relative_to(base).as_posix() if inside else str(self.path)
        lines = difflib.unified_diff(
            (self.old or "").splitlines(keepends=True),
            self.new.splitlines(keepends=True),
            fromfile="/dev/null" if self.old is None else f"a/{name}",
            tofile=f"b/{name}" if inside else name,
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def apply(self) -> None:
        if self.old is None and self.path.exists():
            raise ProjectError(f"{self.path} appeared while cdinit ran; it was left alone.")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = self.mode if self.old is None else None
        if mode is not None:
            # Created private before anything is written into it.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(self.new)
        else:
            self.path.write_text(self.new, encoding="utf-8")


@dataclass
class ManualEdit:
    """Lines cdinit could not add with certainty: the user adds them."""

    path: Path
    lines: str
    reason: str
