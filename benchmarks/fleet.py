"""Fleet deploys over SSH (issue 14): wall time against the number of hosts and the batch.

    .venv/bin/python benchmarks/fleet.py [--repeat 5] [--hosts 1 2 4 8] [--batches 1 2 4]

Fleets of real SSH test hosts (``tests/fleet_hosts.py``: one Debian ``sshd``
per host on a loopback port, each host with its own deploy root and gunicorn,
one shared SQLite database), all on this machine, so every host shares its
CPUs. One fleet per size in ``--hosts``, each made once, deployed once and
redeployed once (a warm-up, during which the remote ``manage.py`` processes
are counted from ``/proc``), none of that timed.

Each repetition then commits a code-only change (the board's title) before
every deploy and times ``manage.py deploy --env=staging`` from start to exit:

- **parallel**: on each fleet in turn (``strategy: parallel``: prepare on every
  host at once, migrate once, switch every host at once);
- **rolling**: on the fleet of ``--rolling-hosts`` hosts, for each batch size B
  in ``--batches`` (``strategy: rolling``, ``rollout: {"batch": B}``).

The order is reversed every other repetition. The ratios time(N)/time(1 host)
and time(B)/time(B = all hosts) are taken within each repetition; medians with
the spread (min-max). Step times come from the deploy's ``--json`` output (a
step that runs on several hosts counts as its slowest host). Every host runs on
this machine, so each deploy's busy CPU seconds (``/proc/stat``, the whole
machine) tell how much of the wall time is waiting for a CPU, and the deploying
side's own (``getrusage`` of the finished ``manage.py deploy``; the hosts'
processes are sshd's children) how much of it no second machine would take
away. Output is the Markdown BENCHMARKS.md holds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import built_venvs
from tests.fleet_hosts import Fleet
from tests.pipeline_support import set_title

#: A fleet deploy's steps by phase, in the engine's order (``pipeline.deploy``).
PHASES = {
    "prepare": ("upload", "venv", "check", "clean_pyc", "collectstatic", "serve_check"),
    "commit": ("plan", "backup", "migrate"),
    "switch": ("switch", "reload", "processes", "smoke"),
    "finish": ("finish",),
}
#: Seconds between two looks at /proc while the remote processes are counted.
POLL = 0.01
#: /proc/stat's fields of the "cpu" line that count as busy (not idle, not iowait).
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal


def cpu_busy() -> float:
    """Seconds of CPU this machine has spent busy since boot, all CPUs together."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(fields[i]) for i in BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the deploys), user and system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spread(values: list[float], digits: int = 2) -> str:
    """Median (min-max)."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


@dataclass
class Timing:
    """One timed deploy: its wall time and what its ``--json`` output says."""

    wall: float
    engine: float
    #: CPU seconds the whole machine was busy during the deploy (every host is on it).
    cpu: float
    #: Of those, the deploying side's: ``manage.py deploy`` and what it waited for
    #: (the hosts' processes are sshd's children, not ours).
    deployer_cpu: float
    #: The hosts as the steps name them, the migration host first ("" for an only host).
    hosts: list[str]
    #: step name -> seconds on each host, in the fleet's order ("" for the fleet's own).
    steps: dict[str, dict[str, float]]

    def slowest(self, name: str) -> float:
        return max(self.steps.get(name, {}).values(), default=0.0)

    def phase(self, name: str, batch: int) -> float:
        """The phase's critical path: each host's steps in turn, the hosts of a batch
        at once, the batches one after the other (commit runs on one host, finish on
        none in particular)."""
        if name == "finish":
            return self.slowest("finish")
        per_host = [sum(self.steps.get(step, {}).get(host, 0.0) for step in PHASES[name])
                    for host in self.hosts]  # fmt: skip
        return sum(max(per_host[i : i + batch]) for i in range(0, len(per_host), batch))

    def unaccounted(self, batch: int) -> float:
        """The engine's time in none of the phases: connecting, the lock, reading each
        host's releases, history, agents' and connections' close."""
        return self.engine - sum(self.phase(name, batch) for name in PHASES)


@dataclass
class Subject:
    """One fleet as the benchmark deploys it, and its timed deploys."""

    fleet: Fleet
    title: str
    timings: dict[str, list[Timing]] = field(default_factory=dict)
    #: The environment's options as last committed (a commit must change something).
    options: dict[str, Any] = field(default_factory=dict)

    def deploy(self, label: str, **options: Any) -> Timing:
        """Commit a code-only change (and ``options`` as the environment's), then time
        the deploy from start to exit."""
        if options and options != self.options:
            self.fleet.configure(**options)
            self.options = options
        set_title(self.fleet.project, f"{self.title}, deploy {label}")
        started, busy, ours = time.monotonic(), cpu_busy(), children_cpu()
        code, data, stderr = self.fleet.deploy()
        wall, cpu = time.monotonic() - started, cpu_busy() - busy
        deployer = children_cpu() - ours
        if code != 0 or data.get("status") != "success":
            raise RuntimeError(f"the deploy of {self.title} ({label}) failed:\n{stderr}")
        steps: dict[str, dict[str, float]] = {}
        for step in data["steps"]:
            steps.setdefault(step["name"], {})[step.get("host", "")] = float(step["seconds"])
        return Timing(wall, float(data["seconds"]), cpu, deployer, data["hosts"] or [""], steps)


class RemoteManagePy:
    """The ``manage.py`` processes of a fleet's releases that run while it is open,
    per host, read from /proc (every host is this machine)."""

    def __init__(self, fleet: Fleet) -> None:
        self.roots = [f"{host.root}/" for host in fleet.hosts]
        self.seen: dict[tuple[int, str], tuple[int, str]] = {}  # (pid, start) -> host, command
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> RemoteManagePy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def per_host(self) -> list[Counter[str]]:
        counts: list[Counter[str]] = [Counter() for _ in self.roots]
        for host, command in self.seen.values():
            counts[host][command] += 1
        return counts

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    self._look(int(pid))
            self._stop.wait(POLL)

    def _look(self, pid: int) -> None:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            args = argv.split("\0")
            # python .../releases/<id>/sampleproject/manage.py <command>; not the shells
            # that start it, whose argv holds the same words further on.
            if len(args) < 3 or not Path(args[0]).name.startswith("python"):
                return
            if not args[1].endswith("/manage.py"):
                return
            start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            return  # gone meanwhile
        for host, root in enumerate(self.roots):
            if args[1].startswith(root):
                self.seen[pid, start] = (host, args[2])


def describe(counts: list[Counter[str]]) -> str:
    """ "1 (cdagent)" per host, hosts alike grouped: "host 1: ...; hosts 2-4: ... each"."""
    groups: list[tuple[int, int, Counter[str]]] = []
    for number, count in enumerate(counts, start=1):
        if groups and groups[-1][0] > 1 and groups[-1][2] == count:  # host 1 migrates
            groups[-1] = (groups[-1][0], number, count)
        else:
            groups.append((number, number, count))
    parts = []
    for first, last, count in groups:
        what = ", ".join(f"{n} {c}" for c, n in sorted(count.items())) or "none"
        hosts = f"host {first}" if first == last else f"hosts {first}-{last}, each"
        parts.append(f"{hosts}: {sum(count.values())} ({what})")
    return "; ".join(parts)


def venv_cache(directory: Path) -> Path:
    """The sample project's release virtualenvs, built by the tests' own builder into
    ``directory`` (once: a later run given the same directory reuses them)."""
    directory.mkdir(parents=True, exist_ok=True)
    factory = pytest.TempPathFactory(
        None, 3, "all", trace=lambda *args: None, basetemp=directory, _ispytest=True
    )
    return built_venvs(factory, "gunicorn")


@contextlib.contextmanager
def fleets(base: Path, sizes: list[int], venvs: Path) -> Iterator[dict[int, Subject]]:
    """A fleet per size; every sshd and app server stopped after, whatever happened
    (a fleet whose start failed half way is stopped through its pid files)."""
    made: dict[int, Subject] = {}
    try:
        for count in sizes:
            made[count] = Subject(Fleet(base / f"fleet-{count}", count, venvs), f"{count} hosts")
        yield made
    finally:
        for subject in made.values():
            subject.fleet.stop()
        for pidfile in [*base.glob("fleet-*/sshd-*/sshd.pid"),
                        *base.glob("fleet-*/host-*/shared/run/*.pid")]:  # fmt: skip
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


@dataclass
class Run:
    """What one run of the benchmark measured."""

    options: argparse.Namespace
    subjects: dict[int, Subject]
    #: Per fleet size, the remote manage.py commands each host ran in the warm-up.
    processes: dict[int, list[Counter[str]]]
    load: tuple[float, float]

    def timings(self, strategy: str, count: int, batch: int) -> list[Timing]:
        return self.subjects[count].timings[f"{strategy} {batch}"]

    def parallel(self, count: int) -> list[Timing]:
        return self.timings("parallel", count, count)

    def rolling(self, batch: int) -> list[Timing]:
        return self.timings("rolling", self.options.rolling_hosts, batch)


def measure(options: argparse.Namespace, base: Path) -> Run:
    """Every fleet made, deployed and warmed up, then the timed deploys, interleaved."""
    sizes = sorted({*options.hosts, options.rolling_hosts})
    venvs = venv_cache(options.venvs or base / "venvs")
    processes: dict[int, list[Counter[str]]] = {}
    runs = [("parallel", n, n) for n in options.hosts]
    runs += [("rolling", options.rolling_hosts, b) for b in options.batches]
    with fleets(base, sizes, venvs) as subjects:
        for count, subject in subjects.items():  # untimed: first deploy, then a warm-up
            code, _, stderr = subject.fleet.deploy()
            if code != 0:
                raise SystemExit(f"the first deploy to {count} hosts failed:\n{stderr}")
            with RemoteManagePy(subject.fleet) as remote:
                subject.deploy("warm-up")
            processes[count] = remote.per_host()
        load_before = os.getloadavg()[0]
        for number in range(options.repeat):
            for strategy, count, batch in runs if number % 2 == 0 else reversed(runs):
                rollout = {"batch": batch} if strategy == "rolling" else {}
                subject = subjects[count]
                timing = subject.deploy(
                    f"{number + 1}, {strategy} {batch}", strategy=strategy, rollout=rollout
                )
                subject.timings.setdefault(f"{strategy} {batch}", []).append(timing)
        load_after = os.getloadavg()[0]
    return Run(options, subjects, processes, (load_before, load_after))


def common_cells(timings: list[Timing], baseline: list[float]) -> str:
    """A row's wall time, its ratio to ``baseline`` (per repetition) and the engine's."""
    walls = [t.wall for t in timings]
    ratios = [w / o for w, o in zip(walls, baseline, strict=True)]
    return f"{spread(walls)} | {spread(ratios)} | {spread([t.engine for t in timings])}"


def print_parallel(run: Run) -> None:
    first = min(run.options.hosts)
    one = [t.wall for t in run.parallel(first)]
    print(f"Parallel rollout (code-only redeploy), ratio to {first} host(s):")
    print()
    print("| hosts | deploy wall time (s) | ratio (per repetition) | engine (s) "
          "| outside the engine (s) | CPU busy (s) | deploying side's CPU (s) "
          "| hosts' CPU per host (s) | CPUs busy (of the machine's) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for count in run.options.hosts:
        timings = run.parallel(count)
        outside = [t.wall - t.engine for t in timings]
        cpu = [t.cpu for t in timings]
        deployer = [t.deployer_cpu for t in timings]
        per_host = [(t.cpu - t.deployer_cpu) / count for t in timings]
        share = [t.cpu / t.wall / (os.cpu_count() or 1) for t in timings]
        print(f"| {count} | {common_cells(timings, one)} "
              f"| {spread(outside)} | {spread(cpu)} | {spread(deployer)} "
              f"| {spread(per_host)} | {spread(share)} |")  # fmt: skip


def print_rolling(run: Run) -> None:
    hosts, everything = run.options.rolling_hosts, max(run.options.batches)
    whole = [t.wall for t in run.rolling(everything)]
    print(f"Rolling rollout on {hosts} hosts, ratio to batch {everything} (all at once):")
    print()
    print("| batch | batches | deploy wall time (s) | ratio (per repetition) | engine (s) "
          "| switch phase (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for batch in run.options.batches:
        timings = run.rolling(batch)
        switch = [t.phase("switch", batch) for t in timings]
        batches = -(-hosts // batch)
        print(f"| {batch} | {batches} | {common_cells(timings, whole)} "
              f"| {spread(switch)} |")  # fmt: skip


def print_steps(run: Run) -> None:
    sizes = run.options.hosts
    print("Parallel rollout per step, seconds (the slowest host's; medians (min-max)):")
    print()
    print("| step | " + " | ".join(f"{n} host(s)" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in run.parallel(max(sizes))[0].steps:
        cells = [spread([t.slowest(name) for t in run.parallel(n)], 3) for n in sizes]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for phase in PHASES:
        cells = [spread([t.phase(phase, n) for t in run.parallel(n)], 3) for n in sizes]
        print(f"| **{phase}** phase | " + " | ".join(cells) + " |")
    cells = [spread([t.unaccounted(n) for t in run.parallel(n)], 3) for n in sizes]
    print("| engine, outside the phases | " + " | ".join(cells) + " |")


def print_processes(run: Run) -> None:
    print("Remote `manage.py` processes of one code-only deploy (the warm-up), per host:")
    print()
    print("| hosts | processes |")
    print("|---|---|")
    for count, counts in run.processes.items():
        print(f"| {count} | {describe(counts)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rolling-hosts", type=int, default=4)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--venvs", type=Path, help="where the sample virtualenvs are (built if missing)"
    )
    options = parser.parse_args()
    started = time.monotonic()
    run = measure(options, Path(tempfile.mkdtemp(prefix="django-cd-bench-fleet-")))
    minutes = (time.monotonic() - started) / 60

    load = f"load average {run.load[0]:.2f} before, {run.load[1]:.2f} after (1 min)"
    python = sys.version.split()[0]
    print(f"repetitions: {options.repeat}; python {python}; {os.cpu_count()} CPUs; {load}; "
          f"{minutes:.1f} min in all")  # fmt: skip
    for part in (print_parallel, print_rolling, print_steps, print_processes):
        print()
        part(run)
    print()
    for count in options.hosts:
        walls = " ".join(f"{t.wall:.2f}" for t in run.parallel(count))
        print(f"all parallel deploys, {count} host(s) (s): {walls}")
    for batch in options.batches:
        walls = " ".join(f"{t.wall:.2f}" for t in run.rolling(batch))
        print(f"all rolling deploys, batch {batch} (s): {walls}")


if __name__ == "__main__":
    main()
