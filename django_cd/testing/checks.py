"""System checks for test pipelines (ids django_cd.E020-E029, docs/checks.md).

``manage.py check`` does not import tests, so this check imports the test
modules of the project's own apps (those under ``BASE_DIR`` or listed in
``DJANGO_CD["FIRST_PARTY_APPS"]``) to see their ``@pipeline`` declarations. A
module that fails to import is left to the test run, which reports it.

Importing every test module is slow, and every command that runs the system
checks would pay for it (``migrate``, ``collectstatic``, the deploy's own
``check``). So the modules are imported only for the commands where a wrong
pipeline name matters (:data:`IMPORTING_COMMANDS`); elsewhere the check still
reports the declarations already imported, which costs nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, register

from django_cd import conf
from django_cd.project import is_first_party
from django_cd.testing import decorator

#: Pipeline names travel in file names and comma-separated options.
PIPELINE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: The ``manage.py`` commands for which the check imports the project's test modules.
IMPORTING_COMMANDS = frozenset({"test", "check", "predeploy"})


def imports_test_modules(argv: Sequence[str] | None = None) -> bool:
    """True when the running command is one of :data:`IMPORTING_COMMANDS`.

    ``check --deploy`` is the deploy's own check in the release: tests are not deployed.
    """
    args = sys.argv if argv is None else argv
    if len(args) > 1 and args[1] == "check" and "--deploy" in args:
        return False
    return len(args) > 1 and args[1] in IMPORTING_COMMANDS


@register("django_cd")
def check_pipelines(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Pipeline names are usable, and every ``@pipeline`` names a declared one."""
    pipelines = conf.get_config()["PIPELINES"]
    if not isinstance(pipelines, list | tuple) or not all(isinstance(p, str) for p in pipelines):
        return []  # django_cd.E004 already reports it
    errors: list[CheckMessage] = [
        Error(
            f"DJANGO_CD['PIPELINES'] has the name {name!r}, which cannot be used.",
            hint="Use letters, digits, '-' and '_' (it names result files and is "
            "given as --pipeline=a,b).",
            id="django_cd.E021",
        )
        for name in pipelines
        if name and not PIPELINE_NAME_RE.match(name)
    ]
    if imports_test_modules():
        _import_test_modules(app_configs)
    seen = set()
    for declaration in decorator.declarations:
        for name in declaration.names:
            if name in pipelines or (declaration.target, name) in seen:
                continue
            seen.add((declaration.target, name))
            errors.append(
                Error(
                    f"Test {declaration.target} is in pipeline {name!r}, which is not declared.",
                    hint=f"Use one of {', '.join(pipelines)}, or add {name!r} to "
                    "DJANGO_CD['PIPELINES'].",
                    id="django_cd.E020",
                )
            )
    return errors


def _import_test_modules(app_configs: Sequence[AppConfig] | None) -> None:
    for app_config in app_configs or apps.get_app_configs():
        if is_first_party(app_config):
            for module in _test_modules(app_config):
                try:
                    import_module(module)
                except Exception:
                    continue


def _test_modules(app_config: AppConfig) -> Iterator[str]:
    root = Path(app_config.path)
    for path in sorted(root.rglob("test*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if all(part.isidentifier() for part in parts):
            yield ".".join((app_config.name, *parts))
