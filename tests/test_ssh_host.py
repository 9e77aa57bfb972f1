"""The ``Host`` contract, held by ``LocalHost`` and by ``SSHHost`` against a real sshd.

Each test runs twice: on this machine and over SSH to a loopback sshd that logs in
the same user, so what the host did is also checked with ``pathlib`` directly.
"""

from __future__ import annotations

import grp
import importlib.util
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_cd.pipeline.files import Privacy
from django_cd.pipeline.host import Host, LocalHost
from django_cd.pipeline.ssh import SSHHost
from tests.pipeline_support import REPO_ROOT, commit_all, git
from tests.sshd_support import SSHServer, sshd  # noqa: F401 (fixture)

KINDS = ["local", "ssh"]


def make_host(kind: str, server: SSHServer | None, root: Path) -> Host:
    if kind == "local":
        return LocalHost()
    assert server is not None
    return SSHHost(server.spec(root))


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> SSHServer | None:
    return request.getfixturevalue("sshd") if kind == "ssh" else None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def host(kind: str, server: SSHServer | None, root: Path) -> Iterator[Host]:
    made = make_host(kind, server, root)
    try:
        yield made
    finally:
        if isinstance(made, SSHHost):
            made.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- files ---------------------------------------------------------------------------


def test_write_text_replaces_whole_with_private_modes(host: Host, root: Path) -> None:
    path = root / "release.json"
    host.write_text(str(path), "first")
    assert (path.read_text(), mode(path)) == ("first", 0o600)
    host.write_text(str(path), "second\n" * 1000, mode=0o640)
    assert (path.read_text(), mode(path)) == ("second\n" * 1000, 0o640)
    assert os.listdir(root) == ["release.json"]  # no temporary left behind


def test_write_text_readers_never_see_half_a_file(host: Host, root: Path) -> None:
    path = root / "manifest"
    contents = ["a" * 200_000, "b" * 200_000]
    host.write_text(str(path), contents[0])
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(20):
            host.write_text(str(path), contents[number % 2])
    finally:
        done.set()
        reader.join()
    assert seen <= set(contents) and seen


def test_write_text_into_a_missing_directory_is_a_file_not_found(host: Host, root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        host.write_text(str(root / "no" / "such" / "file"), "x")


def test_append_text_keeps_every_record(host: Host, root: Path) -> None:
    path = root / "history.jsonl"
    host.append_text(str(path), '{"n": 1}\n')
    with path.open("a") as file:
        file.write('{"n": 2, "cut sho')  # a record a crash cut short
    host.append_text(str(path), '{"n": 3}\n')
    assert path.read_text().splitlines() == ['{"n": 1}', '{"n": 2, "cut sho', '{"n": 3}']
    assert mode(path) == 0o600


def test_create_exclusive_creates_once(host: Host, root: Path) -> None:
    path = root / ".lock"
    assert host.create_exclusive(str(path), "holder one") is True
    assert host.create_exclusive(str(path), "holder two") is False
    assert (path.read_text(), mode(path)) == ("holder one", 0o600)
    assert os.listdir(root) == [".lock"]


def test_read_stat_list_and_remove(host: Host, root: Path) -> None:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub" / "file").write_text("content ✓")
    (root / "link").symlink_to("dir")
    assert host.read_text(str(root / "dir" / "sub" / "file")) == "content ✓"
    with pytest.raises(FileNotFoundError):
        host.read_text(str(root / "missing"))
    assert [host.exists(str(root / n)) for n in ("dir", "link", "missing")] == [1, 1, 0]
    assert host.is_file(str(root / "dir" / "sub" / "file"))
    assert not host.is_file(str(root / "dir")) and not host.is_file(str(root / "link"))
    assert host.listdir(str(root)) == ["dir", "link"]
    assert host.listdir(str(root / "missing")) == []
    assert host.readlink(str(root / "link")) == "dir"
    assert host.readlink(str(root / "dir")) is None
    os.utime(root / "dir" / "sub" / "file", (1_600_000_000, 1_600_000_000))
    assert host.modified_at(str(root / "dir" / "sub" / "file")) == 1_600_000_000
    host.remove(str(root / "link"))
    assert (root / "dir" / "sub" / "file").exists()  # a link goes, not its target
    host.remove(str(root / "dir"))
    host.remove(str(root / "missing"))
    assert os.listdir(root) == []


def test_makedirs_gives_new_directories_the_mode(host: Host, root: Path) -> None:
    root.chmod(0o755)
    host.makedirs(str(root / "a" / "b" / "c"))
    assert [mode(root / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert mode(root) == 0o755  # what existed is left alone
    host.makedirs(str(root / "a" / "d"), mode=0o750)
    assert (mode(root / "a"), mode(root / "a" / "d")) == (0o700, 0o750)
    host.makedirs(str(root / "a"))  # nothing to do


def test_a_group_gets_setgid_directories_and_group_readable_files(host: Host, root: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    host.privacy = Privacy(group=group)
    host.makedirs(str(root / "releases" / "1"))
    host.write_text(str(root / "releases" / "1" / "REVISION"), "abc\n")
    host.set_mode(str(root / "releases"), 0o700)  # exactly: setgid cleared
    assert mode(root / "releases" / "1") == 0o2750
    assert mode(root / "releases" / "1" / "REVISION") == 0o640
    assert mode(root / "releases") == 0o700
    assert os.stat(root / "releases" / "1").st_gid == os.getgid()


def test_make_temp_dir_is_new_empty_and_private(host: Host, root: Path) -> None:
    made = Path(host.make_temp_dir())
    try:
        assert made.is_dir() and not list(made.iterdir())
        assert mode(made) == 0o700 and root not in made.parents
        assert Path(host.make_temp_dir()) != made
    finally:
        host.remove(str(made))
    assert not made.exists()


# -- the current link ------------------------------------------------------------------


def test_switch_link_is_never_missing(host: Host, root: Path) -> None:
    link = root / "current"
    for name in ("1", "2"):
        (root / name).mkdir()
    host.switch_link(str(link), "1")
    missing = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                os.readlink(link)
            except FileNotFoundError:
                missing.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(30):
            host.switch_link(str(link), "2" if number % 2 == 0 else "1")
    finally:
        done.set()
        reader.join()
    assert not missing
    assert os.readlink(link) == "1" and host.readlink(str(link)) == "1"
    assert sorted(os.listdir(root)) == ["1", "2", "current"]


# -- archives and digests ----------------------------------------------------------------


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **attributes: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def test_extract_tar_applies_the_data_filter(host: Host, root: Path) -> None:
    data = tar_of(
        (member("app", tarfile.DIRTYPE, mode=0o777), b""),
        (member("app/run.sh", mode=0o4777), b"#!/bin/sh\n"),
        (member("app/settings.py", mode=0o666, uid=4321, gid=4321), b"X = 1\n"),
        (member("app/current", tarfile.SYMTYPE, linkname="settings.py"), b""),
        (member("/abs/file"), b"kept inside"),
    )
    host.extract_tar(data, str(root / "release"))
    app = root / "release" / "app"
    assert (app / "settings.py").read_text() == "X = 1\n"
    assert mode(app / "run.sh") == 0o755  # no setuid, no group or other write
    assert mode(app / "settings.py") == 0o644
    assert os.stat(app / "settings.py").st_uid == os.getuid()
    assert os.readlink(app / "current") == "settings.py"
    assert (root / "release" / "abs" / "file").read_text() == "kept inside"  # "/" stripped


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (member("../outside"), tarfile.OutsideDestinationError),
        (member("up", tarfile.SYMTYPE, linkname="../.."), tarfile.LinkOutsideDestinationError),
        (member("link", tarfile.SYMTYPE, linkname="/etc/passwd"), tarfile.AbsoluteLinkError),
        (member("dev", tarfile.CHRTYPE), tarfile.SpecialFileError),
    ],
)
def test_extract_tar_rejects_what_escapes_the_release(
    host: Host, root: Path, bad: tarfile.TarInfo, error: type[Exception]
) -> None:
    dest = root / "release"
    dest.mkdir()
    data = tar_of((bad, b"escaped"), (member("fine"), b"fine"))
    with pytest.raises(error):
        host.extract_tar(data, str(dest))
    assert not (root / "outside").exists()
    if isinstance(host, SSHHost):  # rejected before anything was sent
        assert os.listdir(dest) == []


def test_a_git_archive_extracts_as_it_does_locally(host: Host, root: Path) -> None:
    repo = root / "repo"
    (repo / "bin").mkdir(parents=True)
    (repo / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (repo / "bin" / "run").chmod(0o775)
    (repo / "app.py").write_text("print('app')\n")
    (repo / "link").symlink_to("app.py")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    commit_all(repo, "first")
    data = subprocess.run(
        ["git", "-C", str(repo), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    LocalHost().extract_tar(data, str(root / "here"))
    host.extract_tar(data, str(root / "there"))

    def tree(base: Path) -> list[tuple[str, int, str]]:
        return sorted(
            (str(p.relative_to(base)), mode(p), os.readlink(p) if p.is_symlink() else "")
            for p in base.rglob("*")
        )

    assert tree(root / "there") == tree(root / "here")
    assert ("bin/run", 0o755, "") in tree(root / "there")
    assert mode(root / "there") == mode(root / "here")
    assert LocalHost().tree_digest(str(root / "there")) == LocalHost().tree_digest(
        str(root / "here")
    )


def test_tree_digest_is_the_local_digest(host: Host, root: Path) -> None:
    tree = root / "tree"
    for name, content in {
        "manage.py": "print()",
        "app/models.py": "x = 1",
        "app/__pycache__/models.cpython-311.pyc": "cache",
        "app/static/x.pyc": "compiled",
        "pkg.egg-info/PKG-INFO": "build output",
        "node_modules/lib.js": "vendored",
        "deeper/a/b/ünïcode.txt": "text",
    }.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(content)
    before = host.tree_digest(str(tree))
    assert before == LocalHost().tree_digest(str(tree))
    (tree / "app" / "__pycache__" / "models.cpython-311.pyc").write_text("other cache")
    assert host.tree_digest(str(tree)) == before  # caches left out
    (tree / "app" / "models.py").write_text("x = 2")
    assert host.tree_digest(str(tree)) != before
    assert host.tree_digest(str(tree / "manage.py")) == LocalHost().tree_digest(
        str(tree / "manage.py")
    )


def test_tracked_tree_digest_is_the_local_digest(host: Host, root: Path) -> None:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "tracked.txt").write_text("tracked")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    commit_all(repo, "first")
    (repo / "src" / "untracked.txt").write_text("untracked")
    digest = host.tree_digest(str(repo / "src"), tracked=True)
    assert digest == LocalHost().tree_digest(str(repo / "src"), tracked=True)
    assert digest != host.tree_digest(str(repo / "src"))  # the untracked file counts there


# -- commands ----------------------------------------------------------------------------


def test_run_reports_status_and_combined_output(host: Host) -> None:
    result = host.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.returncode, result.output, result.ok) == (3, "out\nerr\n", False)
    assert host.run(["true"]).ok
    missing = host.run(["no-such-command-here"])
    assert missing.returncode == 127 and "no-such-command-here" in missing.output


def test_run_gives_stdin_env_and_cwd(host: Host, root: Path) -> None:
    assert host.run(["rev"], stdin="olleh\n").output == "hello\n"
    assert host.run(["cat"]).output == ""  # no stdin: end of input at once
    assert host.run(["env"], env={"ONLY": "this one"}).output == "ONLY=this one\n"
    odd = {"PWD": "/kept", "A": "it's $HOME `x`\nline 2", "EMPTY": "", "B-C": "odd name"}
    printed = host.run(["env", "-0"], env=odd, stdin="input").output
    assert dict(line.split("=", 1) for line in printed.split("\0") if line) == odd
    assert host.run(["cat"], env={"A": "1"}, stdin="after the env").output == "after the env"
    assert host.run(["pwd"], cwd=str(root)).output.strip() == str(root)
    quoted = host.run(["printf", "%s|", "a b", "$HOME", "it's"])
    assert quoted.output == "a b|$HOME|it's|"
    assert host.run(["pwd"], cwd=str(root / "missing")).returncode == 127


def test_run_kills_a_command_past_its_timeout(host: Host, root: Path) -> None:
    pidfile = root / "pid"
    started = time.monotonic()
    result = host.run(["sh", "-c", f"echo $$ > {pidfile}; echo started; exec sleep 30"], timeout=1)
    assert time.monotonic() - started < 10
    assert result.returncode == -9
    assert result.output == "started\n\n(timed out after 1 s)"
    pid = int(pidfile.read_text())
    assert wait_until(lambda: not host.pid_alive(pid))


def test_commands_are_created_with_the_child_umask(host: Host, root: Path) -> None:
    assert host.run(["touch", str(root / "made")]).ok
    assert mode(root / "made") == 0o640


def test_pid_alive_and_signal(host: Host) -> None:
    process = host.spawn(["sleep", "60"], cwd="/", env={"PATH": os.environ["PATH"]})
    assert host.pid_alive(process.pid)
    assert host.signal(process.pid, signal.SIGTERM)
    process.wait(timeout=10)
    assert wait_until(lambda: not host.pid_alive(process.pid))
    assert host.signal(process.pid, signal.SIGTERM) is False


def test_spawn_talks_through_pipes(host: Host) -> None:
    process = host.spawn(["cat"], cwd="/", env={})
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"hello\n")
    process.stdin.flush()
    assert os.read(process.stdout.fileno(), 100) == b"hello\n"
    assert process.poll() is None
    process.stdin.close()
    assert process.wait(timeout=10) == 0
    assert os.read(process.stdout.fileno(), 100) == b""  # end of output
    process.stdout.close()


def test_a_spawned_process_dies_with_the_connection(sshd: SSHServer, root: Path) -> None:  # noqa: F811
    host = SSHHost(sshd.spec(root))
    process = host.spawn(["sleep", "60"], cwd="/", env={})
    assert LocalHost().pid_alive(process.pid)
    host.close()
    assert wait_until(lambda: not LocalHost().pid_alive(process.pid))


def test_a_connection_closed_at_once_leaves_no_process(sshd: SSHServer, root: Path) -> None:  # noqa: F811
    # Closed as soon as the pid is known: sshd may exit before setpriv has asked for the
    # death signal, and then the command must not start at all.
    pids = []
    for _ in range(8):
        host = SSHHost(sshd.spec(root))
        pids.append(host.spawn(["sleep", "60"], cwd="/", env={"SECRET": "s3cret"}).pid)
        host.close()
    assert wait_until(lambda: not any(LocalHost().pid_alive(pid) for pid in pids))


# -- the guard ---------------------------------------------------------------------------


def test_the_guard_excludes_another_connection(
    kind: str, server: SSHServer | None, root: Path
) -> None:
    path = str(root / ".guard")
    first, second = make_host(kind, server, root), make_host(kind, server, root)
    inside = threading.Event()

    def enter() -> None:
        with second.guard(path):
            inside.set()

    try:
        with first.guard(path):
            waiter = threading.Thread(target=enter)
            waiter.start()
            assert not inside.wait(1.0)  # held: the second waits
        assert inside.wait(10)  # freed: the second gets in
        waiter.join()
        assert mode(Path(path)) == 0o600
    finally:
        for made in (first, second):
            if isinstance(made, SSHHost):
                made.close()


HOLDER = """
import json, sys, time
from django_cd.pipeline.host import LocalHost
from django_cd.pipeline.hostspec import HostSpec
from django_cd.pipeline.ssh import SSHHost
spec = json.loads(sys.argv[2])
host = SSHHost(HostSpec(**spec)) if spec else LocalHost()
with host.guard(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_killed_holder_frees_the_guard(kind: str, server: SSHServer | None, root: Path) -> None:
    path = str(root / ".guard")
    spec = server.spec(root).__dict__ if server is not None else {}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path, json.dumps(spec)],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        host = make_host(kind, server, root)
        inside = threading.Event()

        def enter() -> None:
            with host.guard(path):
                inside.set()

        threading.Thread(target=enter, daemon=True).start()
        assert not inside.wait(0.5)
        holder.kill()
        assert inside.wait(15)
    finally:
        holder.kill()
        holder.wait()


def wait_until(condition: object, seconds: float = 10.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_byte_compile_compiles_once_and_takes_unchanged_bytecode(
    host: Host, root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = root / "releases" / "1", root / "releases" / "2"
    sources = {
        "manage.py": "print('hi')\n",
        "app/models.py": "X = 1\n",
        "app/broken.py": "def (:\n",
        "app/escapes.py": "PATTERN = '\\d+'\n",  # a SyntaxWarning, not an error
        "node_modules/pkg/setup.py": "X = 1\n",
    }
    for release in (first, second):
        for name, text in sources.items():
            (release / name).parent.mkdir(parents=True, exist_ok=True)
            (release / name).write_text(text)
        (release / ".venv").symlink_to(root / "releases" / "1" / "app")
    (second / "app" / "models.py").write_text("X = 2\n")

    def cached(release: Path, name: str) -> Path:
        return Path(importlib.util.cache_from_source(str(release / name)))

    assert host.byte_compile(str(first), None) == {"compiled": 3, "reused": 0, "failed": 1}
    assert host.byte_compile(str(second), str(first)) == {"compiled": 1, "reused": 2, "failed": 1}
    assert "escape" not in capfd.readouterr().err  # the deploy's output stays its own
    assert cached(second, "manage.py").stat().st_ino == cached(first, "manage.py").stat().st_ino
    assert (
        cached(second, "app/models.py").read_bytes() != cached(first, "app/models.py").read_bytes()
    )
    assert not (first / "node_modules" / "pkg" / "__pycache__").exists()
    assert not cached(first, "app/broken.py").exists()
    loaded = subprocess.run(
        [sys.executable, "-c", "import app.models as m; print(m.X, m.__cached__)"],
        cwd=second, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert loaded.stdout.split() == ["2", str(cached(second, "app/models.py"))]
    # Bytecode of another Python (another magic number) is never taken.
    pyc = cached(first, "manage.py")
    pyc.unlink()
    pyc.write_bytes(b"\0\0\0\0" + cached(second, "manage.py").read_bytes()[4:])
    third = root / "releases" / "3"
    (third / "app").mkdir(parents=True)
    (third / "manage.py").write_text(sources["manage.py"])
    assert host.byte_compile(str(third), str(first)) == {"compiled": 1, "reused": 0, "failed": 0}
