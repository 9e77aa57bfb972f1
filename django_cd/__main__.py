"""``python -m django_cd cdinit [...]``: cdinit before ``django_cd`` is in INSTALLED_APPS.

``manage.py cdinit`` needs the app installed; this entry point loads the
project's settings the way its ``manage.py`` does (run it from the directory
of ``manage.py``) and runs the same command.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

USAGE = "usage: python -m django_cd cdinit [--env NAME ...] [--server ...] [--write]"


def settings_module(manage_py: Path) -> str | None:
    """The settings module ``manage.py`` sets with ``os.environ.setdefault``."""
    tree = ast.parse(manage_py.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and all(isinstance(a, ast.Constant) for a in node.args)
            and getattr(node.args[0], "value", None) == "DJANGO_SETTINGS_MODULE"
        ):
            return str(getattr(node.args[1], "value", ""))
    return None


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "cdinit":
        print(USAGE, file=sys.stderr)
        return 2
    manage_py = Path.cwd() / "manage.py"
    if not manage_py.is_file():
        print(
            f"CommandError: No manage.py in {Path.cwd()}: cdinit sets up the project of a "
            "manage.py. Fix: cd to the directory that holds your project's manage.py.",
            file=sys.stderr,
        )
        return 1
    module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings_module(manage_py)
    if not module:
        print(
            "CommandError: manage.py does not name a settings module. Fix: set "
            "DJANGO_SETTINGS_MODULE, or run manage.py cdinit once django_cd is installed.",
            file=sys.stderr,
        )
        return 1
    os.environ["DJANGO_SETTINGS_MODULE"] = module
    sys.path.insert(0, str(manage_py.parent))
    sys.argv = [str(manage_py), *argv]
    import django

    try:
        django.setup()
    except Exception as error:  # the project's settings, not ours: say so plainly
        print(
            f"CommandError: The settings {module} did not load ({type(error).__name__}: "
            f"{error}). Fix: set the variables they need in this shell, as for "
            "manage.py runserver, then run cdinit again.",
            file=sys.stderr,
        )
        return 1
    from django_cd.management.commands.cdinit import Command

    Command().run_from_argv([str(manage_py), *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
