"""N ``manage.py`` commands over SSH: a remote process each, or one remote release agent.

    .venv/bin/python benchmarks/ssh_commands.py [--commands 6] [--repeat 7]

A scratch git repository of the sample project is deployed once (locally);
a real ``sshd`` (Debian's OpenSSH server, keys generated for the run) on a
loopback port then serves as the host that holds it, reached through
``SSHHost`` over one Fabric connection, as a deploy to an SSH host reaches it.

Each repetition runs the same N commands (``check``, then ``shell -c``
reading the database, alternately: the kinds of a deploy's Django steps)
both ways, alternating which goes first:

- **processes**: each command is its own ``manage.py`` process on the host
  (one SSH channel each: the remote shell, Python and Django start every time);
- **agent**: inside ``agents(host)``, one ``manage.py cdagent`` on the host
  answers all N (its start-up and its exit are in the time).

Also timed: one SSH channel running ``true`` (the round trip a command costs
before its program starts). Medians over the repetitions with the spread
(min-max); the ratio is taken per pair. Output is the Markdown BENCHMARKS.md holds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.test import override_settings  # noqa: E402

from django_cd import conf  # noqa: E402
from django_cd.pipeline.agent import agents  # noqa: E402
from django_cd.pipeline.layout import Layout  # noqa: E402
from django_cd.pipeline.release import Release  # noqa: E402
from django_cd.pipeline.ssh import SSHHost  # noqa: E402
from tests.pipeline_support import Project, current, django_cd_config  # noqa: E402
from tests.sshd_support import SSHServer  # noqa: E402

COMMANDS = [
    ("check",),
    ("shell", "-v", "0", "-c", "from notes.models import Note; print(Note.objects.count())"),
]


def spread(values: list[float], digits: int = 2) -> str:
    """Median (min-max)."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def timed(action: Callable[[], None]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=6, help="N: commands per run")
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="django-cd-bench-ssh-"))
    project = Project(base)
    server = SSHServer(base / "sshd")
    code, _, stderr = project.deploy()
    if code != 0:
        raise SystemExit(f"the first deploy failed:\n{stderr}")
    server.start()
    host = SSHHost(server.spec(project.root("staging")))
    try:
        with override_settings(DJANGO_CD=django_cd_config(project)):
            env = conf.get_environment("staging")
        release_id = current(project)
        assert release_id is not None
        release = Release(env, host, Layout(str(project.root("staging"))), release_id)
        commands = [COMMANDS[i % len(COMMANDS)] for i in range(options.commands)]

        def processes() -> None:
            for args in commands:
                result = release.manage(*args)
                assert result.ok, result.output

        def agent() -> None:
            with agents(host) as pool:
                for args in commands:
                    result = release.manage(*args)
                    assert result.ok, result.output
                assert sum(a.calls for a in pool.agents.values()) == len(commands)

        host.connect()
        processes()  # warm-up: caches, .pyc files, the connection
        agent()
        load_before = os.getloadavg()
        alone: list[float] = []
        shared: list[float] = []
        for number in range(options.repeat):
            pair = [(alone, processes), (shared, agent)]
            for times, action in pair if number % 2 == 0 else reversed(pair):
                times.append(timed(action))
        channel = [timed(lambda: host.run(["true"])) * 1000 for _ in range(50)]
        load_after = os.getloadavg()
    finally:
        host.close()
        server.stop()
        project.stop_servers()

    n = options.commands
    ratios = [a / s for a, s in zip(alone, shared, strict=True)]
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)"
    python = sys.version.split()[0]
    print(
        f"N = {n} commands, {options.repeat} pairs; python {python}; {os.cpu_count()} CPUs; {load}"
    )
    print()
    print("| measure | processes | one agent | ratio (per pair) |")
    print("|---|---|---|---|")
    print(f"| {n} commands over SSH (s) | {spread(alone)} | {spread(shared)} | {spread(ratios)} |")
    per_alone = [t / n for t in alone]
    per_shared = [t / n for t in shared]
    print(f"| per command (s) | {spread(per_alone, 3)} | {spread(per_shared, 3)} | |")
    print(f"| one SSH channel running `true` (ms) | {spread(channel, 1)} | | |")
    print()
    print("all processes runs (s):", " ".join(f"{t:.2f}" for t in alone))
    print("all agent runs (s):    ", " ".join(f"{t:.2f}" for t in shared))


if __name__ == "__main__":
    main()
