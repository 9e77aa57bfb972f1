"""Deploy and rollback wall times, django-cd against a naive script, in one run.

    .venv/bin/python benchmarks/deploy.py [--repeat 7] [--migrations 200]

A scratch git repository of the sample project is deployed two ways, each
to its own SQLite database and gunicorn on a free loopback port:

- django-cd: ``manage.py deploy --env=staging`` (gates, release and its
  bytecode, venv reuse, check, clean_pyc, collectstatic, serve check, plan,
  migrate, switch, gunicorn USR2 handover, smoke check, tag, history);
- naive: what a hand-written script does in a checkout: ``git pull; pip
  install -r requirements.txt; migrate; collectstatic; restart gunicorn``.

Each repetition commits a code-only change, then times both (alternating
which goes first) from start until the new code answers over HTTP. Then
``manage.py rollback --to`` is timed from command start until the old
release answers. Medians over the repetitions; results go to stdout as the
Markdown table BENCHMARKS.md holds. ``--migrations N`` first adds N applied
(no-op SQL) migrations to the sample's notes app: a project with a long history,
where even "nothing to migrate" costs a graph load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pipeline_support import Project, commit_all, free_port, get, git

POLL = 0.02


def wait_for(url: str, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, release, body = get(url)
            if status == 200 and (needle in body or release == needle):
                return
        except OSError:
            pass
        time.sleep(POLL)
    raise RuntimeError(f"{url} never showed {needle!r}")


class NaiveSite:
    """A checkout served by gunicorn, updated the way a quick script does it."""

    def __init__(self, base: Path, origin: Path) -> None:
        self.dir = base / "naive"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        subprocess.run(["git", "clone", "-q", str(origin), str(self.dir)], check=True)
        self.venv = base / "naive-venv"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        self.pidfile = base / "naive.pid"
        db = base / "naive.sqlite3"
        env_file = base / "naive.env"
        env_file.write_text(
            f"DJANGO_SECRET_KEY={'n' * 60}\nDATABASE_URL=sqlite:///{db}\n"
            "DJANGO_ALLOWED_HOSTS=127.0.0.1\nDJANGO_SECURE_SSL_REDIRECT=false\n"
        )
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings.staging",
            "DJANGO_ENV_FILE": str(env_file),
            "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}",
        }
        self.env.pop("VIRTUAL_ENV", None)

    def sh(self, script: str) -> None:
        subprocess.run(["bash", "-ec", script], cwd=self.dir, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def deploy(self, checkout: str | None = None) -> None:
        """git pull (or checkout a commit); pip install -r; migrate; collectstatic; restart."""
        py = self.venv / "bin" / "python"
        fetch = f"git fetch -q && git checkout -q {checkout}" if checkout else "git pull -q"
        self.sh(
            f"""
            {fetch}
            {py} -m pip install -q --disable-pip-version-check -r sampleproject/requirements.txt
            {py} sampleproject/manage.py migrate --noinput
            {py} sampleproject/manage.py collectstatic --noinput
            if [ -f {self.pidfile} ]; then
                pid=$(cat {self.pidfile}); kill -TERM $pid
                while kill -0 $pid 2>/dev/null; do sleep 0.05; done
            fi
            {self.venv}/bin/gunicorn --daemon --pid {self.pidfile} --workers 1 \\
                --bind 127.0.0.1:{self.port} --chdir sampleproject notesboard.wsgi
            """
        )

    def stop(self) -> None:
        if self.pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.pidfile.read_text()), signal.SIGTERM)


def timed_rollback(
    project: Project, to: str, steps: dict[str, list[float]]
) -> tuple[float, float]:
    """Seconds from starting ``manage.py rollback`` until release ``to`` answers, and
    until the command exits (polled while it runs); its steps' seconds go to ``steps``."""
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
    manage = str(project.repo / "sampleproject" / "manage.py")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, manage, "rollback", "--env=staging", f"--to={to}", "--json"],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(project.url("staging"), to)
    answers = time.monotonic() - started
    stdout, stderr = process.communicate(timeout=120)
    exits = time.monotonic() - started
    assert process.returncode == 0, stderr
    for step in json.loads(stdout)["steps"]:
        steps.setdefault(step["name"], []).append(step["seconds"])
    return answers, exits


def spread(values: list[float], digits: int = 2) -> str:
    """Median (min-max)."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def set_title(project: Project, title: str) -> None:
    views = project.repo / "sampleproject" / "notes" / "views.py"
    text = views.read_text()
    start = text.index('BOARD_TITLE = "') + len('BOARD_TITLE = "')
    views.write_text(text[:start] + title + text[text.index('"', start) :])
    commit_all(project.repo, title)


MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notes", "{parent}")]
    operations = [migrations.RunSQL("SELECT 1", "SELECT 1")]
"""


def add_migrations(project: Project, count: int) -> None:
    """``count`` more (applied once, by the warm-up) migrations in the notes app."""
    directory = project.repo / "sampleproject" / "notes" / "migrations"
    parent = "0002_note_author_pinned"
    for number in range(3, count + 3):
        name = f"{number:04d}_step"
        (directory / f"{name}.py").write_text(MIGRATION.format(parent=parent))
        parent = name
    (directory / "version.txt").write_text(parent + "\n")
    commit_all(project.repo, f"{count} more migrations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--migrations", type=int, default=0, help="add this many migrations to the sample first"
    )
    options = parser.parse_args()
    repeat = options.repeat

    base = Path(tempfile.mkdtemp(prefix="django-cd-bench-"))
    project = Project(base)
    if options.migrations:
        add_migrations(project, options.migrations)
    naive = NaiveSite(base, project.repo)
    load_before = os.getloadavg()
    steps: dict[str, list[float]] = {}
    rollback_steps: dict[str, list[float]] = {}
    try:
        # Warm-up, not measured: first venvs, databases and servers.
        assert project.deploy()[0] == 0
        naive.deploy()
        cd_times, cd_exits, naive_times, rollbacks, naive_rollback_times = [], [], [], [], []
        environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings.cdtest"}
        manage = str(project.repo / "sampleproject" / "manage.py")
        releases, commits = [], []
        for n in range(repeat):
            title = f"Board {n}"
            set_title(project, title)
            commits.append((title, git(project.repo, "rev-parse", "HEAD").strip()))
            order = ["cd", "naive"] if n % 2 == 0 else ["naive", "cd"]
            for which in order:
                started = time.monotonic()
                if which == "cd":
                    # Polled while the command runs: its finish (tag, flags snapshot,
                    # history mirror, pruning) comes after the new code answers.
                    process = subprocess.Popen(
                        [sys.executable, manage, "deploy", "--env=staging", "--json"],
                        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    )  # fmt: skip
                    wait_for(project.url("staging"), title)
                    cd_times.append(time.monotonic() - started)
                    stdout, stderr = process.communicate(timeout=300)
                    cd_exits.append(time.monotonic() - started)
                    assert process.returncode == 0, stderr
                    data = json.loads(stdout)
                    releases.append(data["release"])
                    for step in data["steps"]:
                        steps.setdefault(step["name"], []).append(step["seconds"])
                else:
                    naive.deploy()
                    wait_for(naive.url, title)
                    naive_times.append(time.monotonic() - started)
        # Code-only rollbacks, back and forth between the last two releases.
        for n in range(repeat):
            to = releases[-2] if n % 2 == 0 else releases[-1]
            rollbacks.append(timed_rollback(project, to, rollback_steps))
            # The naive way back: check out the old commit and redo everything.
            title, commit = commits[-2] if n % 2 == 0 else commits[-1]
            started = time.monotonic()
            naive.deploy(checkout=commit)
            wait_for(naive.url, title)
            naive_rollback_times.append(time.monotonic() - started)
    finally:
        project.stop_servers()
        naive.stop()
    load_after = os.getloadavg()

    ratios = [cd / nv for cd, nv in zip(cd_times, naive_times, strict=True)]
    answers = [a for a, _ in rollbacks]
    exits = [e for _, e in rollbacks]
    back_ratios = [a / nv for a, nv in zip(answers, naive_rollback_times, strict=True)]
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)"
    extra = f"; {options.migrations} extra migrations" if options.migrations else ""
    python = sys.version.split()[0]
    print(f"repetitions: {repeat}; python {python}; {os.cpu_count()} CPUs; {load}{extra}")
    print()
    print("| measure | django-cd | naive script | ratio (per pair) |")
    print("|---|---|---|---|")
    print(f"| code-only redeploy, until the new code answers | {spread(cd_times)} s "
          f"| {spread(naive_times)} s | {spread(ratios)} |")  # fmt: skip
    print(f"| code-only redeploy, until the command exits | {spread(cd_exits)} s | | |")
    print(f"| code-only rollback, until the old release answers | {spread(answers)} s "
          f"| {spread(naive_rollback_times)} s | {spread(back_ratios)} |")  # fmt: skip
    print(f"| code-only rollback, until the command exits | {spread(exits)} s | | |")
    print()
    for what, timed in (("deploys", steps), ("rollbacks", rollback_steps)):
        print(f"Medians (min-max) over the timed {what}, per step:")
        print()
        print("| step | seconds |")
        print("|---|---|")
        for name, seconds in timed.items():
            print(f"| {name} | {spread(seconds, 3)} |")
        print()
    print("all django-cd deploys (s):", " ".join(f"{t:.2f}" for t in cd_times))
    print("all naive deploys (s):   ", " ".join(f"{t:.2f}" for t in naive_times))
    print("all rollbacks (s):       ", " ".join(f"{a:.2f}/{e:.2f}" for a, e in rollbacks))
    print("all naive rollbacks (s): ", " ".join(f"{t:.2f}" for t in naive_rollback_times))


if __name__ == "__main__":
    main()
