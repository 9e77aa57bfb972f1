"""Static files collected once, then copied while their inputs stay (``django_cd.static``)."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings

from django_cd import static


def release(base: Path, name: str, css: str = "body { color: red; }\n") -> Path:
    """A release directory with one static source file and its own STATIC_ROOT."""
    path = base / name
    (path / "assets").mkdir(parents=True)
    (path / "assets" / "site.css").write_text(css)
    return path


def settings_of(path: Path) -> override_settings:
    return override_settings(
        STATICFILES_DIRS=[str(path / "assets")],
        STATIC_ROOT=str(path / "var" / "static"),
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )


def fingerprint_of(path: Path) -> str:
    with settings_of(path):
        return static.fingerprint(str(path))


def test_the_fingerprint_ignores_where_the_release_is_not_what_it_holds(tmp_path: Path) -> None:
    one, two = release(tmp_path, "one"), release(tmp_path, "two")
    changed = release(tmp_path, "three", css="body { color: blue; }\n")
    assert fingerprint_of(one) == fingerprint_of(two)
    assert fingerprint_of(one) != fingerprint_of(changed)
    with settings_of(two), override_settings(STATIC_URL="/assets/"):
        assert static.fingerprint(str(two)) != fingerprint_of(one)


def test_reuse_copies_only_a_collection_made_for_the_same_inputs(tmp_path: Path) -> None:
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    (old_root / "css").mkdir(parents=True)
    (old_root / "css" / "site.css").write_text("collected")
    static.stamp(str(old_root), "abc")
    assert static.reuse(str(old_root), str(new_root), "other") is None
    assert not new_root.exists()
    assert static.reuse(str(old_root), str(new_root), "abc") == 2  # the file and the stamp
    copied = new_root / "css" / "site.css"
    assert copied.read_text() == "collected"
    # A copy, not a link: writing it in place leaves the rollback target as it was.
    assert copied.stat().st_ino != (old_root / "css" / "site.css").stat().st_ino
    # A root with something in it already is left to collectstatic.
    assert static.reuse(str(old_root), str(new_root), "abc") is None
    # One shared STATIC_ROOT already holds the collection.
    assert static.reuse(str(old_root), str(old_root), "abc") == 0


def cdcollect(path: Path, previous: Path | None) -> dict[str, object]:
    out = StringIO()
    args = ["--release", str(path)]
    if previous is not None:
        args += ["--previous-root", str(previous / "var" / "static")]
    with settings_of(path):
        call_command("cdcollect", *args, stdout=out)
    answer: dict[str, object] = json.loads(out.getvalue().strip().splitlines()[-1])
    return answer


def test_cdcollect_collects_then_copies_then_collects_what_changed(tmp_path: Path) -> None:
    first = release(tmp_path, "first")
    collected = cdcollect(first, None)
    assert collected["reused"] is None
    assert (first / "var" / "static" / "site.css").exists()

    second = release(tmp_path, "second")
    reused = cdcollect(second, first)
    assert reused["fingerprint"] == collected["fingerprint"]
    assert isinstance(reused["reused"], int) and reused["reused"] > 1
    assert (second / "var" / "static" / "site.css").read_text() == "body { color: red; }\n"

    third = release(tmp_path, "third", css="body { color: green; }\n")
    recollected = cdcollect(third, second)
    assert recollected["reused"] is None
    assert (third / "var" / "static" / "site.css").read_text() == "body { color: green; }\n"
    stamp = (third / "var" / "static" / static.STAMP).read_text().strip()
    assert stamp == recollected["fingerprint"] != collected["fingerprint"]
    assert os.stat(third / "var" / "static" / "site.css").st_nlink == 1
