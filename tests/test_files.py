"""What the engine writes: private whatever the umask, atomic, durable, and clean on a
full disk (django_cd.pipeline.host, .files, Layout.ensure). Real files, real
processes, a real full filesystem (a tmpfs, or a loop-mounted image)."""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_cd.pipeline import history
from django_cd.pipeline.files import Privacy, describe_os_error
from django_cd.pipeline.host import LocalHost
from django_cd.pipeline.layout import Layout


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def other_group() -> grp.struct_group:
    """A real group the deploying user is not primarily in."""
    mine = os.getgid()
    return next(g for g in grp.getgrall() if g.gr_gid != mine)


@pytest.fixture(params=[0o000, 0o022], ids=["umask000", "umask022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".tmp" in name)


# Modes -----------------------------------------------------------------------


def test_files_and_directories_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    host = LocalHost()
    host.makedirs(str(tmp_path / "root" / "shared" / "log"))
    host.write_text(str(tmp_path / "root" / "release.json"), "{}\n")
    host.append_text(str(tmp_path / "root" / "history.jsonl"), "{}\n")
    assert host.create_exclusive(str(tmp_path / "root" / ".lock"), "held\n")
    for directory in ("root", "root/shared", "root/shared/log"):
        assert mode(tmp_path / directory) == 0o700, directory
    for name in ("release.json", "history.jsonl", ".lock"):
        assert mode(tmp_path / "root" / name) == 0o600, name
    assert leftovers(tmp_path / "root") == []


def test_a_configured_group_may_read_and_owns_everything(tmp_path: Path, umask: int) -> None:
    group = other_group()
    host = LocalHost()
    host.privacy = Privacy(group.gr_name)
    host.makedirs(str(tmp_path / "root" / "releases"))
    host.write_text(str(tmp_path / "root" / "release.json"), "{}\n")
    host.append_text(str(tmp_path / "root" / "history.jsonl"), "{}\n")
    host.create_exclusive(str(tmp_path / "root" / ".lock"), "held\n")
    for name, expected in [
        ("root", 0o2750), ("root/releases", 0o2750), ("root/release.json", 0o640),
        ("root/history.jsonl", 0o640), ("root/.lock", 0o640),
    ]:  # fmt: skip
        assert (mode(tmp_path / name), os.stat(tmp_path / name).st_gid) == (
            expected, group.gr_gid
        ), name  # fmt: skip


def test_an_unknown_group_is_a_clear_error(tmp_path: Path) -> None:
    host = LocalHost()
    host.privacy = Privacy("no-such-group-x")
    with pytest.raises(OSError, match="the group 'no-such-group-x' does not exist"):
        host.write_text(str(tmp_path / "f"), "x")
    assert os.listdir(tmp_path) == []


def old_root(base: Path) -> Layout:
    """A deploy root as versions before 0.x left it: 0755 directories, 0644 files."""
    os.umask(0o022)
    root = base / "staging"
    release = root / "releases" / "20260101T000000Z-abc1234"
    for directory in (release, root / "shared" / "backups", root / "shared" / "log",
                      root / "shared" / "run", root / "venvs" / "h1"):  # fmt: skip
        directory.mkdir(parents=True)
    files = {
        release / "release.json": "{}", root / "history.jsonl": "{}\n",
        root / "shared" / ".env": "DJANGO_SECRET_KEY=x\n",
        root / "shared" / "db.sqlite3": "", root / "shared" / "backups" / "a.dump": "",
        root / "shared" / "log" / "gunicorn.log": "", root / "shared" / "run" / "g.pid": "1",
    }  # fmt: skip
    for path, text in files.items():
        path.write_text(text)
    return Layout(str(root))


def test_ensure_tightens_a_root_made_by_an_older_version(tmp_path: Path) -> None:
    layout = old_root(tmp_path)
    root = Path(layout.root)
    assert mode(root / "history.jsonl") == 0o644  # the defect the issue reproduced
    layout.ensure(LocalHost())
    expected = {
        "": 0o700, "releases": 0o700, "releases/20260101T000000Z-abc1234": 0o700,
        "releases/20260101T000000Z-abc1234/release.json": 0o600, "shared": 0o700,
        "venvs": 0o700, "history.jsonl": 0o600, "shared/.env": 0o600,
        "shared/db.sqlite3": 0o600, "shared/backups": 0o700, "shared/backups/a.dump": 0o600,
        "shared/log": 0o700, "shared/log/gunicorn.log": 0o640, "shared/run/g.pid": 0o600,
    }  # fmt: skip
    assert {name: mode(root / name) for name in expected} == expected


def test_ensure_with_a_group_opens_the_root_to_it_but_not_secrets_or_backups(
    tmp_path: Path,
) -> None:
    layout = old_root(tmp_path)
    root = Path(layout.root)
    group = other_group()
    host = LocalHost()
    host.privacy = Privacy(group.gr_name)
    layout.ensure(host)
    expected = {
        "": 0o2750, "releases": 0o2750, "shared": 0o2750, "history.jsonl": 0o640,
        "shared/.env": 0o600, "shared/backups/a.dump": 0o600, "shared/log/gunicorn.log": 0o640,
    }  # fmt: skip
    assert {name: mode(root / name) for name in expected} == expected
    assert {os.stat(root / name).st_gid for name in expected} == {group.gr_gid}


# Atomic and durable -------------------------------------------------------------

_CREATOR = """
import os, sys
from django_cd.pipeline.host import LocalHost
host, path, text = LocalHost(), sys.argv[1], "x" * 1_000_000 + "\\n"
for _ in range(int(sys.argv[2])):
    assert host.create_exclusive(path, text)
    os.unlink(path)
"""


def test_the_lock_content_is_complete_the_moment_another_process_sees_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".lock"
    creator = subprocess.Popen([sys.executable, "-c", _CREATOR, str(path), "300"], cwd=os.getcwd())
    seen, partial = 0, 0
    deadline = time.monotonic() + 120
    while creator.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            size = len(path.read_bytes())
            seen += 1
            partial += size != 1_000_001
    assert creator.wait(timeout=60) == 0
    assert seen > 0, "the reader never saw the file: the race did not happen"
    assert partial == 0
    assert leftovers(tmp_path) == []


def test_create_exclusive_refuses_an_existing_name_and_keeps_its_content(
    tmp_path: Path,
) -> None:
    host = LocalHost()
    path = tmp_path / ".lock"
    assert host.create_exclusive(str(path), "first\n")
    assert not host.create_exclusive(str(path), "second\n")
    assert path.read_text() == "first\n"
    assert leftovers(tmp_path) == []


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    host = LocalHost()
    path = tmp_path / "release.json"
    path.write_text("old")
    inode = os.stat(path).st_ino
    host.write_text(str(path), '{"status": "deployed"}\n')
    assert path.read_text() == '{"status": "deployed"}\n'
    assert os.stat(path).st_ino != inode, "written in place, not renamed over"
    assert leftovers(tmp_path) == []


def test_a_history_line_cut_short_does_not_swallow_the_next_event(tmp_path: Path) -> None:
    host, layout = LocalHost(), Layout(str(tmp_path))
    history.append(host, layout, {"event": "deploy", "n": 1})
    with open(layout.history, "a") as file:  # a crash in the middle of a line
        file.write('{"event": "deploy", "n": 2, "sta')
    history.append(host, layout, {"event": "rollback", "n": 3})
    assert [e["n"] for e in history.read(host, layout)] == [1, 3]
    lines = Path(layout.history).read_text().splitlines()
    assert json.loads(lines[-1]) == {"event": "rollback", "n": 3}


# A full disk -----------------------------------------------------------------------


@contextlib.contextmanager
def full_filesystem(base: Path) -> Iterator[Path]:
    """A real, small filesystem mounted at ``base/mnt``: a tmpfs, or a loop-mounted
    ext2 image where tmpfs cannot be mounted. Unmounted on the way out."""
    mountpoint = base / "mnt"
    mountpoint.mkdir()
    tmpfs = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if tmpfs.returncode != 0:
        image = base / "disk.img"
        with open(image, "wb") as file:
            file.truncate(1024 * 1024)
        subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` until a write fails with ENOSPC."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(100_000):  # bounded: 400 MB, far above any test disk
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    else:
        raise AssertionError("the filesystem never filled up")
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_leaves_no_half_file_and_says_so(tmp_path: Path) -> None:
    host = LocalHost()
    with full_filesystem(tmp_path) as disk:
        root = disk / "staging"
        host.makedirs(str(root))
        manifest = root / "release.json"
        host.write_text(str(manifest), '{"status": "preparing"}\n')
        history_file = root / "history.jsonl"
        host.append_text(str(history_file), '{"n": 1}\n')
        fill(disk)
        big = json.dumps({"status": "deployed", "pad": "x" * 20_000}) + "\n"
        with pytest.raises(OSError) as written:
            host.write_text(str(manifest), big)
        assert written.value.errno == errno.ENOSPC
        assert manifest.read_text() == '{"status": "preparing"}\n'  # the old content, whole
        with pytest.raises(OSError) as created:
            host.create_exclusive(str(root / ".lock"), big)
        assert created.value.errno == errno.ENOSPC
        assert not (root / ".lock").exists(), "an empty or half lock was left behind"
        with pytest.raises(OSError) as appended:
            host.append_text(str(history_file), json.dumps({"n": 2, "pad": "y" * 20_000}) + "\n")
        assert appended.value.errno == errno.ENOSPC
        assert history_file.read_text() == '{"n": 1}\n'  # the partial record taken back
        assert leftovers(root) == []
        assert describe_os_error(written.value, str(manifest)) == (
            f"The disk holding {manifest} is full (ENOSPC): free space, then run again."
        )


def test_each_write_error_is_named_with_what_to_do() -> None:
    path = "/srv/cd/staging/.lock"
    assert describe_os_error(OSError(errno.EACCES, "Permission denied"), path).startswith(
        f"Permission denied writing {path} (EACCES): the deploying user must own"
    )
    assert describe_os_error(OSError(errno.EROFS, "Read-only"), path) == (
        f"The file system holding {path} is read-only (EROFS): remount it read-write, "
        "then run again."
    )
    assert "(EDQUOT)" in describe_os_error(OSError(errno.EDQUOT, "Quota"), path)
    assert describe_os_error(OSError(errno.EIO, "Input/output error"), path) == (
        f"Writing {path} failed: Input/output error (EIO)."
    )


def test_a_read_only_filesystem_is_named(tmp_path: Path) -> None:
    host = LocalHost()
    with full_filesystem(tmp_path) as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(OSError) as raised:
            host.write_text(str(disk / "release.json"), "{}")
        assert raised.value.errno == errno.EROFS
        assert "read-only (EROFS)" in describe_os_error(raised.value, str(disk))
