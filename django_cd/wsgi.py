"""The WSGI application django-cd's app servers load in each worker.

The engine starts gunicorn and uWSGI with a defined environment that holds no
project variables; each worker, when it imports this module, first exports the
serving release's copy of ``shared/.env`` (named by ``DJANGO_CD_RELEASE_ENV``,
through ``current``), then imports the project's WSGI module (``DJANGO_CD_WSGI``,
``module:attribute``). Settings that read ``os.environ`` see the file's
variables, and a changed ``shared/.env`` reaches the workers that the next
deploy or rollback starts, as systemd's ``EnvironmentFile`` would: a master
that re-executes itself or forks new workers never keeps an old copy.
"""

from __future__ import annotations

import gc
import os
from importlib import import_module
from pathlib import Path

from django_cd.env import project_variables, read_env_file

# A release deployed by a django-cd without snapshots has none: shared/.env itself.
_snapshot = os.environ.get("DJANGO_CD_RELEASE_ENV", "")
if not (_snapshot and Path(_snapshot).is_file()):
    _snapshot = os.environ.get("DJANGO_ENV_FILE", "")
if _snapshot and Path(_snapshot).is_file():
    os.environ.update(project_variables(read_env_file(_snapshot)))

if "DJANGO_CD_WSGI" not in os.environ:
    raise RuntimeError(
        "django_cd.wsgi serves the module named by DJANGO_CD_WSGI (module:attribute), "
        "which is not set: the app servers django-cd starts set it; load your project's "
        "own WSGI module otherwise."
    )
_module, _, _attribute = os.environ["DJANGO_CD_WSGI"].partition(":")
# Loading a project creates tens of thousands of objects and almost no garbage:
# the collector's passes meanwhile are a tenth of a worker's start. It runs again
# (and collects whatever the start left) once the application is loaded.
_collecting = gc.isenabled()
gc.disable()
try:
    application = getattr(import_module(_module), _attribute or "application")
finally:
    if _collecting:
        gc.enable()
