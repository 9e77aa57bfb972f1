"""One path to production: what "passed an environment" means.

A commit has **passed** environment E when (1) a ``cd/E/<n>`` tag points at
it and (2) E's ``history.jsonl`` holds a ``deploy`` entry with status
``success`` and that tag. A deploy only tags after its switch, reload and
smoke check all succeeded, so the tag says "this deploy went well", and the
history entry proves it was made by a deploy (not by hand). A later rollback
on E does not undo the pass: the commit did run there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django_cd import conf
from django_cd.pipeline import history
from django_cd.pipeline.errors import PipelineError
from django_cd.pipeline.fleet import primary_target
from django_cd.pipeline.gitrepo import TAG_PREFIX, Repository


@dataclass(frozen=True)
class Pass:
    """Commit ``commit`` passed ``env`` as deploy ``tag``."""

    env: str
    tag: str
    commit: str


def passes(repo: Repository, source: conf.Environment) -> list[Pass]:
    """Every pass of ``source``, newest (highest tag number) first."""
    prefix = f"{TAG_PREFIX}/{source.name}/"
    listing = repo.git(
        "for-each-ref",
        "--format=%(refname:short) %(*objectname) %(objectname)",
        f"refs/tags/{prefix}",
    )
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    tagged: list[tuple[int, str, str]] = []
    for line in listing.splitlines():
        name, peeled, direct = [*line.split(), "", ""][:3]
        match = pattern.match(name)
        if match:
            # An annotated tag peels to its commit; a lightweight one is the commit.
            tagged.append((int(match.group(1)), name, peeled or direct))
    succeeded = _successful_tags(source)
    return [
        Pass(source.name, name, commit)
        for _, name, commit in sorted(tagged, reverse=True)
        if name in succeeded
    ]


def _successful_tags(source: conf.Environment) -> set[str]:
    try:
        target = primary_target(source)  # a fleet's history is kept on its first host
    except PipelineError:
        return set()
    try:
        events = history.read(target.host, target.layout)
    except PipelineError:  # an SSH host that cannot be reached
        return set()
    finally:
        target.host.close()
    return {
        str(entry.get("tag"))
        for entry in events
        if entry.get("event") == "deploy" and entry.get("status") == "success" and entry.get("tag")
    }


def pass_of(repo: Repository, source: conf.Environment, commit: str) -> Pass | None:
    """The newest pass of ``commit`` through ``source``, or None."""
    return next((p for p in passes(repo, source) if p.commit == commit), None)


def newest(repo: Repository, source: conf.Environment) -> Pass | None:
    """The newest commit that passed ``source``: what ``deploy`` promotes by default."""
    found = passes(repo, source)
    return found[0] if found else None
