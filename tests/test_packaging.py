"""The extras the docs and ``cdinit`` name are extras the distribution has: pip only
warns about an unknown extra and installs nothing for it."""

from __future__ import annotations

import configparser
import re

from tests.pipeline_support import REPO_ROOT


def extras() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    return set(parser["options.extras_require"])


def test_the_readme_names_only_real_extras() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    listed = re.search(r"The extras: (.+?)\. The name", readme, re.DOTALL)
    assert listed is not None
    # "`backup` (django-dbbackup), `extensions` (`clean_pyc`), ...": not what is in brackets.
    named = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", listed.group(1))))
    assert named and named <= extras()
    for group in re.findall(r"django-cd-deploy\[([\w,]+)\]", readme):
        assert set(group.split(",")) <= extras(), group


def test_cdinit_requires_real_extras() -> None:
    from django_cd.cdinit.requirements import _requirement_line

    for server in ("gunicorn", "uwsgi", "command"):
        for backup in (True, False):
            line = _requirement_line(server, backup)
            named = re.fullmatch(r"django-cd-deploy(?:\[([\w,]+)\])?", line)
            assert named is not None, line
            assert set(filter(None, (named.group(1) or "").split(","))) <= extras(), line
