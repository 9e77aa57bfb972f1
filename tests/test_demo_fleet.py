"""``make demo-fleet`` end to end (issue 14): scripts/demo_fleet.py run as a user runs
it, with three real sshd hosts and their gunicorns on 127.0.0.1:8661-8673.

The demo works in this checkout's var/fleet (it removes a previous run's first, as
here); afterwards nothing it started may be running or listening.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sshd_support import SSHD

REPO = Path(__file__).resolve().parent.parent
FLEET = REPO / "var" / "fleet"
SSH_PORTS = (8671, 8672, 8673)
HTTP_PORTS = (8661, 8662, 8663)
# About three minutes here, most of it pip building each host's virtualenv.
TIME_LIMIT = 900
OLD, NEW = "'Notes board'", "'Notes board, deployed continuously'"


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def alive_in_fleet(pid: int) -> bool:
    """True when ``pid`` runs and is the demo's (a recycled pid is someone else's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return str(FLEET) in cmdline or cwd.startswith(str(FLEET))


def run_demo() -> str:
    environ = dict(os.environ)
    # The clone's django_cd is not this checkout's: coverage would report it apart.
    # Coverage's subprocess patch passes its configuration in COVERAGE_PROCESS_CONFIG.
    for name in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        environ.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo_fleet.py")],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        process.terminate()  # the demo's finally still stops its fleet
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"make demo-fleet took over {TIME_LIMIT} s:\n{output}")
    assert process.returncode == 0, output
    return output


def summary_release(output: str, line: str) -> str:
    """The release named by one line of the demo's closing summary."""
    found = re.search(rf"^  - {line} (\d{{8}}T\d{{6}}Z-[0-9a-f]+)", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_demo_fleet_deploys_rolls_out_rolls_back_and_stops_all_it_started() -> None:
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"{SSHD} is missing: run scripts/ensure-services.sh")
    leftover = FLEET / "host-1" / "left-by-an-earlier-run"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.touch()

    output = run_demo()
    user = getpass.getuser()

    assert f"removed {FLEET}" in output and not leftover.exists()
    sshds = [int(pid) for pid in re.findall(r"host-\d: sshd \(pid (\d+)\) on 127", output)]
    assert len(sshds) == 3, output
    first, second, back = (
        summary_release(output, line)
        for line in ("parallel deploy of", "rolling deploy of", "rollback of the fleet to")
    )
    assert back == first != second
    assert f"- parallel deploy of {first}: [host-1, host-2, host-3]\n" in output
    assert f"- rolling deploy of {second}: [host-1] then [host-2] then [host-3]\n" in output

    # Each host's own URL, over HTTP: the first release, the change, the first again.
    for number, port in enumerate(HTTP_PORTS, start=1):
        shown = f"http://127.0.0.1:{port}/ (host-{number}) serves release"
        assert output.count(f"{shown} {first}: {OLD}\n") == 2
        assert output.count(f"{shown} {second}: {NEW}\n") == 1
    # Migrated once, on the migration host; every host smoke-checked at each switch.
    migrated = re.findall(r"^  (\S+@\S+)\s+migrate\s+ok ", output, re.MULTILINE)
    assert migrated == [f"{user}@127.0.0.1:{SSH_PORTS[0]}"]
    assert len(re.findall(r"^  \S+@\S+\s+smoke\s+ok ", output, re.MULTILINE)) == 9
    # Each command's closing line names every host, not only the first one's URL.
    addresses = ", ".join(f"{user}@127.0.0.1:{port}" for port in SSH_PORTS)
    for release in (first, second, back):
        assert f"\n  {release} is current on {addresses}\n" in output
    final_status = output.rsplit("status --env=fleet", 1)[1]
    for port in SSH_PORTS:
        assert f"host:        {user}@127.0.0.1:{port}: {first}, running" in final_status
    assert "fleet:       on one release" in final_status
    # The header says which host it was read on; each server is on its host's line.
    assert f"  migration:   {user}@127.0.0.1:{SSH_PORTS[0]} (" in final_status
    assert "  server:" not in final_status
    assert "Demo complete in" in output

    # Nothing it started is left: no port answers, no sshd or gunicorn pid runs.
    assert [port for port in (*SSH_PORTS, *HTTP_PORTS) if answers(port)] == []
    gunicorns = re.findall(r"(?:started gunicorn|new gunicorn master) \(pid (\d+)\)", output)
    assert len(gunicorns) == 3 + 3 + 3, output  # started; the change; the rollback
    assert [pid for pid in [*sshds, *map(int, gunicorns)] if alive_in_fleet(pid)] == []
