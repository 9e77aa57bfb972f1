"""Backup retention (django_cd.pipeline.prune) on a deploy root built on disk, and the
checks of the privacy and retention settings (django_cd.E090-E092)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_cd import conf
from django_cd.pipeline import prune
from django_cd.pipeline.target import Target

R1, R2, R3, R4 = (f"20260{m}01T000000Z-aaaaaa{m}" for m in range(1, 5))
F1, F2, F3 = (f"2026020{d}T120000Z-fffffff" for d in range(1, 4))
KILLED = "20260301T120000Z-kkkkkkk"


def config(root: Path, **options: Any) -> dict[str, Any]:
    env = {"settings": "settings.staging", "root": str(root), "server": {"type": "none"}}
    return {"KEEP_RELEASES": 2, "ENVIRONMENTS": {"staging": env}, **options}


def release(root: Path, release_id: str, status: str, **manifest: Any) -> None:
    path = root / "releases" / release_id
    path.mkdir(parents=True)
    data = {"id": release_id, "commit": "c" * 40, "status": status, **manifest}
    (path / "release.json").write_text(json.dumps(data))


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """Four deploys (R1..R4, R4 current), three failed deploys whose release directories
    are gone (F1..F3), one killed mid-way (KILLED, still 'preparing'), and a backup of
    each, plus a file of the operator's own."""
    root = tmp_path / "staging"
    backups = root / "shared" / "backups"
    backups.mkdir(parents=True)
    for release_id in (R1, R2, R3):
        release(root, release_id, "deployed")
    release(root, R4, "deployed", previous=R3, backup={"path": "", "state_of": R3})
    release(root, KILLED, "preparing")
    (root / "current").symlink_to(f"releases/{R4}")
    for release_id in (R1, R2, R4, F1, F2, F3, KILLED):
        (backups / f"{release_id}.dump").write_text("dump")
        (backups / f"{release_id}.dump.metadata").write_text("{}")
    (backups / "before-upgrade.sql").write_text("the operator's own")
    yield root


def backups_left(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "shared" / "backups").iterdir())


def test_backups_of_kept_releases_and_the_last_failed_ones_stay(root: Path) -> None:
    with override_settings(DJANGO_CD=config(root, KEEP_FAILED_BACKUPS=2)):
        removed = prune.prune(Target(conf.get_environment("staging")))
    # The killed deploy's half-made release takes no KEEP_RELEASES slot: it goes too.
    assert sorted(p.name for p in (root / "releases").iterdir()) == sorted([R3, R4])
    assert removed == [R1, R2, KILLED]
    # R4's backup is kept with R4; of the unfinished deploys F3 and KILLED (the newest
    # two) stay for inspection; R1 and R2 went with their releases, F1 and F2 as too old.
    assert backups_left(root) == sorted(
        ["before-upgrade.sql"]
        + [f"{i}.dump{ext}" for i in (R4, F3, KILLED) for ext in ("", ".metadata")]
    )


def test_failed_backups_are_found_without_their_release_directory(root: Path) -> None:
    with override_settings(DJANGO_CD=config(root)):
        target = Target(conf.get_environment("staging"))
        assert prune.failed_backups(target) == [F1, F2, F3, KILLED]


def test_keep_failed_backups_zero_keeps_none_of_them(root: Path) -> None:
    with override_settings(DJANGO_CD=config(root, KEEP_FAILED_BACKUPS=0)):
        removed = prune.prune_backups(Target(conf.get_environment("staging")))
    assert len(removed) == 2 * 6  # R1, R2, F1, F2, F3, KILLED: .dump and .metadata
    assert backups_left(root) == sorted(
        ["before-upgrade.sql", f"{R4}.dump", f"{R4}.dump.metadata"]
    )


def test_the_default_keeps_two_failed_backups(root: Path) -> None:
    assert conf.DEFAULTS["KEEP_FAILED_BACKUPS"] == 2
    with override_settings(DJANGO_CD=config(root)):
        prune.prune_backups(Target(conf.get_environment("staging")))
    assert [n for n in backups_left(root) if n.endswith(".dump")] == sorted(
        [f"{R4}.dump", f"{F3}.dump", f"{KILLED}.dump"]
    )


# Checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, "2", True, 1.5])
def test_keep_failed_backups_must_be_a_count(tmp_path: Path, value: Any) -> None:
    with override_settings(DJANGO_CD=config(tmp_path, KEEP_FAILED_BACKUPS=value)):
        problems = conf.validate()
    assert [(p.id, p.msg) for p in problems] == [
        (
            "django_cd.E090",
            f"DJANGO_CD['KEEP_FAILED_BACKUPS'] must be an integer of at least 0, not {value!r}.",
        )
    ]


def group_config(tmp_path: Path, group: Any) -> dict[str, Any]:
    cfg = config(tmp_path)
    cfg["ENVIRONMENTS"]["staging"]["group"] = group
    return cfg


def test_group_must_be_a_name(tmp_path: Path) -> None:
    with override_settings(DJANGO_CD=group_config(tmp_path, 1000)):
        assert [p.id for p in conf.validate()] == ["django_cd.E091"]


def test_group_must_exist_and_the_check_command_says_so(tmp_path: Path) -> None:
    with override_settings(DJANGO_CD=group_config(tmp_path, "no-such-group-x")):
        problems = conf.validate()
        assert [(p.id, p.hint) for p in problems] == [
            (
                "django_cd.E092",
                "Create it (groupadd no-such-group-x) and add the deploying user, "
                "or fix the name.",
            )
        ]
        with pytest.raises(SystemCheckError, match=r"django_cd\.E092"):
            call_command("check")


def test_a_valid_group_reaches_the_environment(tmp_path: Path) -> None:
    import grp

    name = grp.getgrall()[0].gr_name
    with override_settings(DJANGO_CD=group_config(tmp_path, name)):
        assert conf.validate() == []
        env = conf.get_environment("staging")
        assert env.group == name
        assert Target(env).host.privacy.file_mode == 0o640
