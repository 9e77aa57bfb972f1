"""django_cd.wsgi, what gunicorn and uWSGI load: the release's copy of shared/.env
exported first (never the engine's own variables), then the project's WSGI module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = """import json, os
application = json.dumps({k: os.environ.get(k) for k in ("TITLE", "DJANGO_SETTINGS_MODULE")})
"""


def load(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "projectwsgi.py").write_text(APP)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
        "DJANGO_SETTINGS_MODULE": "settings.staging",
        **environ,
    }
    code = "import django_cd.wsgi as w; print(w.application)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_the_snapshot_is_exported_before_the_project_loads(tmp_path: Path) -> None:
    snapshot, shared = tmp_path / "release.env", tmp_path / "shared.env"
    snapshot.write_text("TITLE=from the snapshot\nDJANGO_SETTINGS_MODULE=settings.evil\n")
    shared.write_text("TITLE=from shared/.env\n")
    result = load(
        tmp_path,
        DJANGO_CD_WSGI="projectwsgi:application",
        DJANGO_CD_RELEASE_ENV=str(snapshot),
        DJANGO_ENV_FILE=str(shared),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "TITLE": "from the snapshot",
        "DJANGO_SETTINGS_MODULE": "settings.staging",  # the engine's, not the file's
    }
    # A release from before snapshots: shared/.env itself.
    snapshot.unlink()
    result = load(
        tmp_path,
        DJANGO_CD_WSGI="projectwsgi",
        DJANGO_CD_RELEASE_ENV=str(snapshot),
        DJANGO_ENV_FILE=str(shared),
    )
    assert json.loads(result.stdout)["TITLE"] == "from shared/.env"


def test_without_a_module_it_says_what_is_missing(tmp_path: Path) -> None:
    result = load(tmp_path)
    assert result.returncode == 1
    assert "DJANGO_CD_WSGI (module:attribute), which is not set" in result.stderr


def test_the_collector_pauses_while_the_project_loads_only(tmp_path: Path) -> None:
    (tmp_path / "gcwsgi.py").write_text("import gc\napplication = gc.isenabled()\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
           "DJANGO_CD_WSGI": "gcwsgi"}  # fmt: skip
    code = "import gc, django_cd.wsgi as w; print(w.application, gc.isenabled())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True"]
    # A server that runs without the collector keeps it off.
    code = "import gc; gc.disable(); import django_cd.wsgi; print(gc.isenabled())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False"]
