"""``make demo-fleet``: the sample project deployed to a fleet of three SSH hosts.

Three Debian sshd test hosts on loopback (127.0.0.1:8671-8673), each with its own
deploy root (var/fleet/host-N) and its own gunicorn (127.0.0.1:8661-8663), all
sharing one SQLite database -> predeploy -> a parallel deploy -> status: each
host's release -> each host's URL serves it -> a change committed and rolled out
one host at a time (rolling, batch 1) -> rollback -> status: the fleet on one
release. The hosts' keys and the deploy key are generated under var/fleet (never
~/.ssh); nothing outside var/ changes. Ports 8660-8679 are the fleet's: demo.py
takes 8601-8602, demo_instances 8610-8649.

Re-runnable: a previous run's servers and directories are removed first. Every
gunicorn and sshd the demo started is stopped at the end; any failure exits
non-zero.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import getpass
import json
import os
import pprint
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import NEW_TITLE, OLD_TITLE, REPO, VAR, DemoFailed, stage

FLEET = VAR / "fleet"
LOCK = VAR / "fleet.lock"  # outside FLEET, which each run removes
CLONE = FLEET / "clone"
DATABASE = FLEET / "database" / "db.sqlite3"
DEPLOY_KEY = FLEET / "deploy_ed25519"
KNOWN_HOSTS = FLEET / "known_hosts"
SSHD = "/usr/sbin/sshd"
HOSTS = 3
GUNICORN_PORTS = range(8661, 8661 + HOSTS)
SSHD_PORTS = range(8671, 8671 + HOSTS)
ENV = "fleet"
START_SECONDS = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass
class DemoHost:
    """One host of the fleet: an sshd on its port, a deploy root, a gunicorn port."""

    number: int
    ssh_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    started: bool = False  # by this run: its ports must be free once it is stopped

    @property
    def name(self) -> str:
        return f"host-{self.number}"

    @property
    def directory(self) -> Path:
        """The sshd's own files: config, host key, authorized_keys, pid file, log."""
        return FLEET / f"sshd-{self.number}"

    @property
    def root(self) -> Path:
        return FLEET / self.name

    @property
    def address(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1:{self.ssh_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    def start(self) -> None:
        """Keys, config, then sshd in the foreground of a child process, until it answers."""
        self.directory.mkdir(parents=True)
        keygen(self.host_key, f"demo-fleet {self.name}")
        authorized = self.directory / "authorized_keys"
        authorized.write_text(Path(f"{DEPLOY_KEY}.pub").read_text())
        config = self.directory / "sshd_config"
        config.write_text(sshd_config(self, authorized))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        log = self.directory / "sshd.log"
        self.started = True
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdout=output,
                stderr=output,
                preexec_fn=die_with_demo,
            )
        deadline = time.monotonic() + START_SECONDS
        while not speaks_ssh(self.ssh_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DemoFailed(f"sshd of {self.name} did not start: {log.read_text()}")
            time.sleep(0.05)
        print(
            f"  {self.name}: sshd (pid {self.process.pid}) on 127.0.0.1:{self.ssh_port}, "
            f"deploy root {self.root}, gunicorn to be on 127.0.0.1:{self.http_port}"
        )

    def known_hosts_line(self) -> str:
        kind, blob = Path(f"{self.host_key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.ssh_port} {kind} {blob}\n"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


FLEET_HOSTS = [
    DemoHost(number + 1, ssh, http)
    for number, (ssh, http) in enumerate(zip(SSHD_PORTS, GUNICORN_PORTS, strict=True))
]


def keygen(path: Path, comment: str) -> None:
    """A new ed25519 key pair, without a passphrase: ``path`` and ``path``.pub."""
    result = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DemoFailed(f"ssh-keygen could not make {path}: {result.stderr.strip()}")


def sshd_config(host: DemoHost, authorized: Path) -> str:
    lines = [
        "ListenAddress 127.0.0.1",
        f"Port {host.ssh_port}",
        f"HostKey {host.host_key}",
        f"AuthorizedKeysFile {authorized}",
        f"PidFile {host.directory / 'sshd.pid'}",
        "UsePAM no",
        # var/ is not owned and moded as sshd wants ~/.ssh to be.
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "Subsystem sftp internal-sftp",
        # A deploy's guard, release agent and commands share one connection per host.
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "LogLevel ERROR",
        # Without it, bash sources ~/.bashrc for every command sshd runs.
        "SetEnv SHLVL=1",
    ]
    return "\n".join(lines) + "\n"


def speaks_ssh(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.settimeout(1)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def answers(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def die_with_demo() -> None:
    """Run in each command the demo starts: the kernel kills it if the demo dies (a
    SIGKILL runs no finally), so a re-run never races a previous run's deploy."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run(*args: str, env: dict[str, str] | None = None) -> str:
    """demo.py's ``run`` (echoed, its output shown, a failure stops the demo), for
    commands that must not outlive the demo."""
    print("$ " + " ".join(args), flush=True)
    started = time.monotonic()
    result = subprocess.run(
        args,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        preexec_fn=die_with_demo,
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise DemoFailed(f"{' '.join(args[:4])} ... exited {result.returncode}")
    print(f"  ({time.monotonic() - started:.1f} s)", flush=True)
    return result.stdout


def manage(*args: str) -> str:
    """The clone's manage.py, deploying to the fleet."""
    env = {"DJANGO_SETTINGS_MODULE": "settings.fleet"}
    manage_py = str(CLONE / "sampleproject" / "manage.py")
    return run(sys.executable, manage_py, *args, env=env)


def report(*args: str) -> Any:
    """A command's ``--json`` output, parsed (the command is not echoed)."""
    result = subprocess.run(
        [sys.executable, str(CLONE / "sampleproject" / "manage.py"), *args, "--json"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings.fleet"},
        text=True,
        capture_output=True,
        preexec_fn=die_with_demo,
    )
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise DemoFailed(f"{' '.join(args)} --json printed no JSON: {result.stderr}") from None


# -- Cleaning up a previous run ---------------------------------------------------------


def ours(pid: int) -> bool:
    """True when ``pid`` is a process of this demo (its command line or directory is
    under var/fleet), so a recycled pid is never killed."""
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        cwd = os.readlink(proc / "cwd")
    except OSError:
        return False
    return str(FLEET) in cmdline or cwd.startswith(str(FLEET))


def kill_leftovers() -> list[int]:
    """Stop what a run left running (a run killed before its finally): the gunicorns
    named by each host's pid files and the sshds named by theirs; SIGKILL after 10 s."""
    pids: list[int] = []
    pidfiles = [*FLEET.glob("host-*/shared/run/*.pid")]
    pidfiles += [*FLEET.glob("sshd-*/sshd.pid")]
    for pidfile in pidfiles:
        with contextlib.suppress(ValueError, OSError):
            pids.append(int(pidfile.read_text().strip()))
    for state in FLEET.glob("host-*/shared/run/*.json"):
        with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
            pids.append(int(json.loads(state.read_text())["pid"]))
    killed = [pid for pid in dict.fromkeys(pids) if ours(pid)]
    for pid in killed:  # gunicorn stops its workers on SIGTERM; a SIGKILL would orphan them
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in killed if ours(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return killed


def take_lock() -> IO[str]:
    """One run at a time: a second would remove the first one's fleet. Held until exit."""
    VAR.mkdir(exist_ok=True)
    handle = LOCK.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DemoFailed(f"another demo-fleet is running (it holds {LOCK})") from None
    return handle


def clean_previous_run() -> None:
    killed = kill_leftovers()
    if killed:
        print(f"  stopped {len(killed)} process(es) a previous run left: {killed}")
    if FLEET.exists():
        shutil.rmtree(FLEET)
        print(f"  removed {FLEET}")
    busy = [port for port in [*SSHD_PORTS, *GUNICORN_PORTS] if answers(port)]
    if busy:
        raise DemoFailed(
            f"127.0.0.1 port(s) {busy} are in use by another program; the fleet demo needs "
            f"{SSHD_PORTS[0]}-{SSHD_PORTS[-1]} (sshd) and "
            f"{GUNICORN_PORTS[0]}-{GUNICORN_PORTS[-1]} (gunicorn)"
        )


# -- The fleet -------------------------------------------------------------------------


def start_hosts() -> None:
    if not os.access(SSHD, os.X_OK):
        raise DemoFailed(f"{SSHD} is missing: run scripts/ensure-sshd.sh (openssh-server)")
    FLEET.mkdir(parents=True)
    keygen(DEPLOY_KEY, "demo-fleet deploy key")
    print(f"  deploy key {DEPLOY_KEY}, trusted by each host's authorized_keys")
    for host in FLEET_HOSTS:
        host.start()
    KNOWN_HOSTS.write_text("".join(host.known_hosts_line() for host in FLEET_HOSTS))
    print(f"  the three host keys in {KNOWN_HOSTS}")


def write_env_files() -> None:
    """Each host's shared/.env: one secret and one database for the fleet (sessions
    and data must be the same whichever host a load balancer picks)."""
    secret = secrets.token_urlsafe(50)
    DATABASE.parent.mkdir(parents=True)
    for host in FLEET_HOSTS:
        shared = host.root / "shared"
        shared.mkdir(parents=True)
        values = {
            "DJANGO_SECRET_KEY": secret,
            "DATABASE_URL": f"sqlite:///{DATABASE}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_DIR": str(shared / "log"),
        }
        path = shared / ".env"
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
        path.chmod(0o600)
        print(f"  wrote {path} (secrets not shown)")
    print(f"  shared database: {DATABASE}")


def fleet_environment(strategy: str, rollout: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": "settings.staging",
        "root": str(FLEET_HOSTS[0].root),  # the default; every host names its own
        "manage": "sampleproject/manage.py",
        "requirements": "sampleproject/requirements.txt",
        "server": {"type": "gunicorn", "bind": "127.0.0.1:8661", "wsgi": "notesboard.wsgi",
                   "workers": 1, "timeout": 20},
        "host_defaults": {
            "key_file": str(DEPLOY_KEY),
            "known_hosts": str(KNOWN_HOSTS),
            # The virtualenvs on each host are built with this interpreter.
            "python": sys.executable,
            "connect_timeout": 5,
        },
        "hosts": [
            {"host": host.address, "root": str(host.root),
             "server": {"bind": f"127.0.0.1:{host.http_port}"}}
            for host in FLEET_HOSTS
        ],
        "migration_host": FLEET_HOSTS[0].address,
        "strategy": strategy,
        "rollout": rollout,
        "smoke": {"defaults": ["home", "admin", "health"]},
    }  # fmt: skip


def write_settings(strategy: str, rollout: dict[str, Any], message: str) -> None:
    """settings/fleet.py in the clone: the deploying machine's settings, whose
    ``fleet`` environment lists the three hosts; committed."""
    definition = pprint.pformat(fleet_environment(strategy, rollout), sort_dicts=False)
    (CLONE / "settings" / "fleet.py").write_text(
        '"""The deploying machine\'s settings for make demo-fleet (scripts/demo_fleet.py)."""\n'
        "\nfrom .dev import *\n\n"
        f"FLEET = {definition}\n\n"
        'DJANGO_CD = {**DJANGO_CD, "ENVIRONMENTS": {"fleet": FLEET}}\n'
    )
    run("git", "-C", str(CLONE), "add", "settings/fleet.py")
    run("git", "-C", str(CLONE), "commit", "--quiet", "-m", message)
    print(f"  {CLONE / 'settings' / 'fleet.py'}: strategy {strategy!r}, rollout {rollout}")


def make_clone() -> None:
    run("git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(CLONE))
    run("git", "-C", str(CLONE), "config", "user.name", "Demo Deployer")
    run("git", "-C", str(CLONE), "config", "user.email", "demo@example.com")


def commit_change() -> None:
    views = CLONE / "sampleproject" / "notes" / "views.py"
    text = views.read_text()
    old = f'BOARD_TITLE = "{OLD_TITLE}"'
    if old not in text:
        raise DemoFailed(f"{views} no longer sets {old}")
    views.write_text(text.replace(old, f'BOARD_TITLE = "{NEW_TITLE}"'))
    run("git", "-C", str(CLONE), "commit", "--quiet", "-am", f"Board title: {NEW_TITLE}")


# -- What the fleet serves -------------------------------------------------------------


def served(host: DemoHost) -> tuple[str, str]:
    """The board's title at the host's URL and the release that served it."""
    request = urllib.request.Request(host.url, headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
        release = response.headers.get("X-Release", "?")
    title = body.split("<title>", 1)[1].split("</title>", 1)[0].strip()
    return title, release


def fleet_releases() -> dict[str, str | None]:
    """Each host's current release, as ``status`` reports it."""
    status = report("status", f"--env={ENV}")
    return {row["host"]: row["current"] for row in status.get("hosts", [])}


def expect_fleet(title: str) -> str:
    """Every host on one release, and its URL serving it with ``title``: the release."""
    releases = fleet_releases()
    for host in FLEET_HOSTS:
        if host.address not in releases:
            raise DemoFailed(f"status does not list {host.address}")
    if len(set(releases.values())) != 1:
        raise DemoFailed(f"the fleet is not on one release: {releases}")
    release = str(releases[FLEET_HOSTS[0].address])
    for host in FLEET_HOSTS:
        shown, serving = served(host)
        print(f"  {host.url} ({host.name}) serves release {serving}: {shown!r}")
        if serving != release or shown != title:
            raise DemoFailed(
                f"{host.name} serves {serving} ({shown!r}), expected {release} ({title!r})"
            )
    return release


def switch_batches(output: str) -> list[list[str]]:
    """The hosts as the deploy's step lines show them switched, in batches: a batch
    ends when its hosts are smoke-checked, before the next batch switches."""
    names = {host.address: host.name for host in FLEET_HOSTS}
    batches: list[list[str]] = []
    checked = True
    for line in output.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] not in names:
            continue
        if words[1] == "switch":
            if checked:
                batches.append([])
                checked = False
            batches[-1].append(names[words[0]])
        elif words[1] == "smoke":
            checked = True
    return batches


def expect_batches(output: str, expected: list[list[str]]) -> str:
    """The batches as the step lines show them; the hosts of one batch switch in
    parallel, in any order."""
    batches = switch_batches(output)
    shown = " then ".join("[" + ", ".join(sorted(batch)) + "]" for batch in batches)
    print(f"  switched in {len(batches)} batch(es): {shown}")
    if [sorted(batch) for batch in batches] != expected:
        raise DemoFailed(f"the deploy switched {batches}, expected {expected}")
    return shown


# -- Stopping --------------------------------------------------------------------------


def stop_fleet() -> None:
    """Every gunicorn (through the engine while the hosts answer, then by pid file),
    then every sshd; checked: none of the fleet's ports answers after."""
    if (CLONE / "settings" / "fleet.py").exists() and all(
        host.process is not None for host in FLEET_HOSTS
    ):
        try:
            manage("server", "stop", f"--env={ENV}")
        except DemoFailed as error:
            print(f"  {error}", file=sys.stderr)
    for host in FLEET_HOSTS:
        host.stop()
    for pid in kill_leftovers():  # what the engine could not stop
        print(f"  killed {pid}, left running")
    ports = [port for h in FLEET_HOSTS if h.started for port in (h.ssh_port, h.http_port)]
    deadline = time.monotonic() + 10
    while busy := [port for port in ports if answers(port)]:
        if time.monotonic() > deadline:
            raise DemoFailed(f"port(s) {busy} still answer after the fleet was stopped")
        time.sleep(0.1)
    if ports:
        print(f"  nothing answers on {', '.join(map(str, sorted(ports)))}")


def terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so that the finally stops the fleet


def main() -> int:
    signal.signal(signal.SIGTERM, terminated)
    started = time.monotonic()
    try:
        lock = take_lock()
    except DemoFailed as error:
        print(f"DEMO FAILED: {error}", file=sys.stderr)
        return 1
    summary: list[str] = []
    failed = False
    try:
        stage("1. A previous run's fleet, if any, stopped and removed")
        clean_previous_run()

        stage("2. Three SSH test hosts on loopback: their keys, one deploy key, known_hosts")
        start_hosts()

        stage("3. Each host's shared/.env: one secret and one SQLite database for the fleet")
        write_env_files()

        stage("4. A scratch clone whose 'fleet' environment lists the three hosts")
        make_clone()
        write_settings("parallel", {}, "The demo fleet: three SSH hosts, parallel")

        stage("5. predeploy: every gate, every host reached; nothing changed")
        manage("predeploy", f"--env={ENV}")

        stage("6. A parallel deploy: prepared on every host at once, migrated once, switched")
        output = manage("deploy", f"--env={ENV}")
        parallel = expect_batches(output, [[host.name for host in FLEET_HOSTS]])

        stage("7. status: each host's release")
        manage("status", f"--env={ENV}")
        first = expect_fleet(OLD_TITLE)
        summary.append(f"parallel deploy of {first}: {parallel}")

        stage("8. A change committed, rolled out one host at a time (rolling, batch 1)")
        commit_change()
        write_settings("rolling", {"batch": 1}, "The demo fleet rolls one host at a time")
        output = manage("deploy", f"--env={ENV}")
        rolling = expect_batches(output, [[host.name] for host in FLEET_HOSTS])
        second = expect_fleet(NEW_TITLE)
        summary.append(f"rolling deploy of {second}: {rolling}")

        stage("9. Rollback: every host back to the previous release, all or nothing")
        manage("rollback", f"--env={ENV}")
        back = expect_fleet(OLD_TITLE)
        if back != first:
            raise DemoFailed(f"rollback went to {back}, expected {first}")
        summary.append(f"rollback of the fleet to {back}")

        stage("10. status: the fleet on one release")
        manage("status", f"--env={ENV}")
        fleet = report("status", f"--env={ENV}")["fleet"]
        if fleet != {"releases": {first: [h.address for h in FLEET_HOSTS]}, "consistent": True}:
            raise DemoFailed(f"the fleet is not consistent: {fleet}")
        print(f"  fleet: {first} on {HOSTS} hosts, consistent")
    except (DemoFailed, urllib.error.URLError, OSError, ValueError) as error:
        print(f"\nDEMO FAILED: {error}", file=sys.stderr)
        failed = True
    except KeyboardInterrupt as error:
        print(f"\nDEMO STOPPED: {error or 'interrupted'}", file=sys.stderr)
        failed = True
    finally:
        stage("Stopping every gunicorn and sshd the demo started")
        try:
            stop_fleet()
        except (DemoFailed, OSError) as error:
            print(f"\nDEMO FAILED while stopping the fleet: {error}", file=sys.stderr)
            failed = True
        lock.close()
    if failed:
        return 1
    print(f"\nDemo complete in {time.monotonic() - started:.0f} s: {HOSTS} SSH hosts "
          f"(sshd {SSHD_PORTS[0]}-{SSHD_PORTS[-1]}, gunicorn "
          f"{GUNICORN_PORTS[0]}-{GUNICORN_PORTS[-1]}), stopped.")  # fmt: skip
    for line in summary:
        print(f"  - {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
