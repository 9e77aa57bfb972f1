"""The deploy lock under contention: two real processes race for it thousands of times.

Before the guard, with ``--break-lock`` on both sides, both processes held the
lock in some rounds (each broke the "stale" lock the other had just taken);
with plain acquisition, a loser was sometimes told the lock was stale because
it read the file while its holder was freeing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROUNDS = 3000

RACER = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from django_cd.pipeline.errors import LockHeld
    from django_cd.pipeline.host import LocalHost
    from django_cd.pipeline.lock import Lock

    path, marker, rounds, breaking, dead = sys.argv[1], sys.argv[2], int(sys.argv[3]), \\
        sys.argv[4] == "break", int(sys.argv[5])
    host = LocalHost()
    counts = {"held": 0, "refused": 0, "told_stale": 0, "double": 0, "broke": 0}
    for n in range(rounds):
        lock = Lock(host, path, action=f"round {n}", timeout=3600, break_stale=breaking)
        try:
            lock.acquire()
        except LockHeld as error:
            counts["refused"] += 1
            counts["told_stale"] += "stale" in str(error)
            continue
        counts["held"] += 1
        counts["broke"] += lock.broken is not None
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            counts["double"] += 1
            lock.release()
            continue
        os.unlink(marker)
        if breaking and n % 3 == 0:
            # Die holding it: the lock stays, naming a process that is gone.
            stale = {"user": "x", "host": host.name, "pid": dead,
                     "since": "2026-01-01T00:00:00+00:00", "action": "a deploy that died"}
            with host.guard(path + ".guard"):
                host.write_text(path, json.dumps(stale))
            lock.held = False
        else:
            lock.release()
    print(json.dumps(counts))
    """
)


def race(tmp_path: Path, mode: str) -> list[dict[str, int]]:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    argv = [
        sys.executable, str(script), str(tmp_path / ".lock"), str(tmp_path / "holder"),
        str(ROUNDS), mode, str(dead.pid),
    ]  # fmt: skip
    racers = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for racer in racers:
        stdout, _ = racer.communicate(timeout=300)
        assert racer.returncode == 0
        results.append(json.loads(stdout))
    return results


@pytest.mark.parametrize("mode", ["break", "plain"])
def test_two_processes_never_both_hold_the_lock(tmp_path: Path, mode: str) -> None:
    results = race(tmp_path, mode)
    assert [r["double"] for r in results] == [0, 0]
    assert sum(r["held"] for r in results) > 0
    # The race was real: each side was refused many times while the other held it.
    assert all(r["refused"] > 0 for r in results), results
    if mode == "break":
        assert sum(r["broke"] for r in results) > 0, results
    else:
        # Every holder is alive and frees the lock: no loser may be told it is stale.
        assert [r["told_stale"] for r in results] == [0, 0]
