"""What the tests' throwaway Django projects share: their manage.py and how it is run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

MANAGE_PY = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


@dataclass
class Run:
    """What one ``manage.py`` run did."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ran(self) -> int:
        """The count of unittest's closing "Ran N tests" line."""
        found = re.findall(r"^Ran (\d+) tests? in", self.stderr, re.MULTILINE)
        assert len(found) == 1, self.stderr
        return int(found[0])

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_manage(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> Run:
    """Run ``root/manage.py ARGS`` with this interpreter and the project's own settings."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    full_env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)
