"""The smoke test and the watch against the sample project under gunicorn.

A healthy release passes ``smoketest`` (with a login as the smoke user); a
release with one broken page fails the deploy's smoke step and is rolled back;
a release that starts failing a few seconds after the switch passes the smoke
step and is rolled back by the watch, which counted its 5xx responses.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import Deployed
from tests.pipeline_support import Project, commit_all, current, history, write_file
from tests.smoke.recorders import Recorder, UdpReceiver, recording, udp_receiver

PASSWORD = "smoke-Pa55word-not-shown"
VIEWS = "sampleproject/notes/views.py"


def configure(project: Project, **fields: Any) -> None:
    """Give staging more fields (committed: the deploy wants a clean checkout)."""
    settings = project.repo / "settings" / "cdtest.py"
    settings.write_text(
        settings.read_text() + f"DJANGO_CD['ENVIRONMENTS']['staging'].update({fields!r})\n"
    )
    commit_all(project.repo, "Configure staging")


def break_view(project: Project, code: str) -> str:
    """Commit a change to the notes views: ``code`` appended to views.py."""
    views = project.repo / VIEWS
    write_file(views, views.read_text() + code)
    return commit_all(project.repo, "A change that breaks something")


def create_smoke_user(project: Project, release: str) -> None:
    root = project.root("staging")
    path = root / "releases" / release
    subprocess.run(
        [str(path / ".venv" / "bin" / "python"), str(path / "sampleproject" / "manage.py"),
         "createsuperuser", "--noinput", "--username=smoker", "--email=s@example.com"],
        env={"DJANGO_SETTINGS_MODULE": "settings.staging",
             "DJANGO_ENV_FILE": str(root / "shared" / ".env"),
             "DJANGO_SUPERUSER_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        cwd=path, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def test_a_healthy_release_passes_and_one_broken_page_rolls_back(staging: Deployed) -> None:
    project = staging.project
    smoke = next(step for step in staging.first["steps"] if step["name"] == "smoke")
    assert smoke["status"] == "ok"
    assert smoke["detail"].endswith(f"2/2 smoke checks passed against {project.url('staging')}")

    create_smoke_user(project, staging.release)
    configure(
        project,
        smoke={"grace_seconds": 2, "defaults": ["home", "admin", "health"]},
        smoke_checks=[
            {"name": "stats", "path": "/stats/", "contains": "Notes board"},
            {"name": "admin index", "path": "/admin/", "login": True, "contains": "smoker"},
        ],
    )
    secrets = {"DJANGO_CD_SMOKE_USER": "smoker", "DJANGO_CD_SMOKE_PASSWORD": PASSWORD}
    table = project.manage("smoketest", "--env=staging", env=secrets)
    assert table.returncode == 0, table.stdout + table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == f"Smoke test of {project.url('staging')}, release {staging.release}"
    assert [line.split()[0] for line in lines[2:7]] == [
        "home",
        "admin",
        "health",
        "stats",
        "admin",
    ]
    assert "FAILED" not in table.stdout
    assert lines[7].startswith("5/5 smoke checks passed")
    as_json = project.manage("smoketest", "--env=staging", "--json", env=secrets)
    data = json.loads(as_json.stdout)
    assert data["ok"] is True
    assert [(c["name"], c["status"]) for c in data["checks"]] == [
        ("home", 200), ("admin login page", 200), ("health", 200), ("stats", 200),
        ("admin index", 200),
    ]  # fmt: skip
    wrong = project.manage(
        "smoketest", "--env=staging", "--nagios",
        env={**secrets, "DJANGO_CD_SMOKE_PASSWORD": "not-" + PASSWORD},
    )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stdout.startswith("SMOKE CRITICAL - 1 of 5 smoke checks failed")
    assert "logging in as the smoke user (DJANGO_CD_SMOKE_USER) failed" in wrong.stdout
    assert PASSWORD not in wrong.stdout + wrong.stderr

    break_view(project, "\n\ndef board_stats(request):\n    raise RuntimeError('stats')\n")
    code, data, stderr = project.deploy()
    assert code == 1, stderr
    assert (data["status"], data["failed_step"]) == ("rolled_back", "smoke")
    assert "stats: answered 500, not 200" in data["error"]
    assert current(project) == staging.release


def test_the_watch_rolls_back_a_release_that_starts_failing(
    staging: Deployed, tmp_path: Path
) -> None:
    project = staging.project
    with recording() as receiver, udp_receiver() as udp:
        data, stderr, new_commit = _deploy_a_degrading_release(project, tmp_path, receiver, udp)
        webhook = receiver.wait_for(2)
        metrics = udp.metrics()
    assert (data["status"], data["failed_step"]) == ("rolled_back", "watch"), stderr
    steps = {step["name"]: step["status"] for step in data["steps"]}
    assert (steps["smoke"], steps["watch"]) == ("ok", "failed")
    assert f"Release {data['release']} served " in data["error"]
    assert "5xx response(s)" in data["error"]
    assert "more than the 2 the environment's watch allows (max_5xx)" in data["error"]
    assert current(project) == staging.release
    assert history(project)[-1]["failed_step"] == "watch"
    assert data["warnings"] == []  # every notifier delivered

    # Told, in Slack's format: what failed, what was undone, which commits.
    (hook,) = [r for r in webhook if r.path == "/hook"]
    payload = hook.json()
    assert payload["text"] == (
        f"Deploy of {data['release']} to staging FAILED and was rolled back"
    )
    fields = {f["title"]: f["value"] for f in payload["attachments"][0]["fields"]}
    assert fields["Failed step"] == "watch"
    assert fields["Rollback"] == f"{staging.release} serves again"
    assert fields["Commits"] == f"{staging.first['commit'][:12]}..{new_commit[:12]}"
    assert "New-note page through create_note" in fields["Commit list"]
    # By mail, through Django's mail system (the file backend here).
    (message,) = list((tmp_path / "mail").iterdir())
    assert "Failed step: watch" in message.read_text()
    # Sentry: the failure as an event.
    (event,) = [r for r in webhook if r.path == "/api/5/envelope/"]
    item = next(part for part in event.envelope() if part.get("message"))
    assert item["tags"]["django_cd.failed_step"] == "watch"
    assert (item["environment"], item["release"]) == ("staging", new_commit)
    # StatsD: the outcome, the duration, each step.
    assert "django_cd.staging.deploy.rolled_back:1|c" in metrics
    assert any(line.startswith("django_cd.staging.deploy.step.watch:") for line in metrics)
    assert any(line.startswith("django_cd.staging.deploy.duration:") for line in metrics)


def _deploy_a_degrading_release(
    project: Project, tmp_path: Path, receiver: Recorder, udp: UdpReceiver
) -> tuple[dict[str, Any], str, str]:
    configure(
        project,
        watch={"seconds": 8, "max_5xx": 2, "interval": 1},
        notifications=[
            {"type": "webhook", "url": receiver.url + "hook"},
            {"type": "mail", "to": ["ops@example.com"], "on": ["failure"]},
        ],
    )
    settings = project.repo / "settings" / "cdtest.py"
    settings.write_text(
        settings.read_text()
        + f"DJANGO_CD['STATSD'] = {{'port': {udp.port}}}\n"
        + "DJANGO_CD['SENTRY'] = {'organization': 'acme', 'project': 'notes'}\n"
        + "EMAIL_BACKEND = 'django.core.mail.backends.filebased.EmailBackend'\n"
        + f"EMAIL_FILE_PATH = {str(tmp_path / 'mail')!r}\n"
    )
    commit_all(project.repo, "Tell people")
    # The new-note page answers 500 from 3 s after its worker first serves; the home
    # page (what the smoke checks see) keeps working, so only the 5xx count can tell.
    break_view(
        project,
        "\n\nimport time as _time\n_BOOTED = _time.monotonic()\n_create = NoteCreateView.as_view()"
        "\n\n\ndef create_note(request):\n    if _time.monotonic() - _BOOTED > 3:\n"
        "        raise RuntimeError('broken after boot')\n    return _create(request)\n",
    )
    urls = project.repo / "sampleproject" / "notes" / "urls.py"
    urls.write_text(
        urls.read_text().replace("views.NoteCreateView.as_view()", "views.create_note")
    )
    new_commit = commit_all(project.repo, "New-note page through create_note")

    traffic = Traffic(project.url("staging") + "new/")
    traffic.start()
    dsn = f"http://key@{receiver.url[7:]}5"
    try:
        result = project.manage("deploy", "--env=staging", "--json", env={"SENTRY_DSN": dsn})
    finally:
        traffic.stop()
    assert result.returncode == 1, result.stderr
    assert 500 in traffic.seen and 200 in traffic.seen
    return json.loads(result.stdout), result.stderr, new_commit


class Traffic(threading.Thread):
    """Users on one page while the deploy runs: the statuses they got."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.seen, self.stopping = url, set[int](), threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            request = urllib.request.Request(self.url, headers={"X-Forwarded-Proto": "https"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    self.seen.add(response.status)
            except urllib.error.HTTPError as error:
                self.seen.add(error.code)
            except OSError:
                pass

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
