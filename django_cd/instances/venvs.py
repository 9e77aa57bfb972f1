"""Virtualenvs shared by a template's instances.

Each instance is its own environment with its own ``venvs/``, and pip for every
pull request would cost a minute each. So the venv a commit needs is built once
in the template's pool (``<template root>/venvs/<hash>``) and linked into the
instance's ``venvs/``; the engine then finds it complete and reuses it. Pruning
in an instance removes only its link; the pool keeps what any instance links to.
"""

from __future__ import annotations

import posixpath

from django_cd.instances.config import Template
from django_cd.pipeline.gitrepo import Repository
from django_cd.pipeline.host import Host
from django_cd.pipeline.layout import Layout
from django_cd.pipeline.release import Release
from django_cd.pipeline.venv import COMPLETE_MARKER, ensure_venv


def prepare(template: Template, host: Host, repo: Repository, commit: str, root: str) -> str:
    """Build (once) the venv ``commit`` needs in the pool; link the pool into ``root``.

    Returns the venv's hash.
    """
    pool = Layout(template.env.root)
    host.makedirs(pool.venvs)
    scratch = host.make_temp_dir()
    try:
        host.extract_tar(repo.archive(commit), scratch)
        release = Release(template.env, host, pool, "instance-venv", location=scratch)
        # One builder per pool at a time: two instances of one commit share the build.
        with host.guard(posixpath.join(pool.venvs, ".guard")):
            built = ensure_venv(release)
            link_pool(template, host, root)
    finally:
        host.remove(scratch)
    return built.hash


def link_pool(template: Template, host: Host, root: str) -> None:
    """Link every complete venv of the pool into ``<root>/venvs`` (existing ones stay)."""
    venvs = Layout(root).venvs
    host.makedirs(venvs)
    for name in host.listdir(template.venv_pool):
        built = posixpath.join(template.venv_pool, name)
        if host.exists(posixpath.join(built, COMPLETE_MARKER)):
            link = posixpath.join(venvs, name)
            if not host.exists(link):
                host.switch_link(link, built)


def prune_pool(template: Template, host: Host, roots: list[str]) -> list[str]:
    """Remove pool venvs that no instance root in ``roots`` links to."""
    removed = []
    host.makedirs(template.venv_pool)
    with host.guard(posixpath.join(template.venv_pool, ".guard")):
        used = set()
        for root in roots:
            venvs = Layout(root).venvs
            for name in host.listdir(venvs):
                if host.readlink(posixpath.join(venvs, name)):
                    used.add(name)
        for name in host.listdir(template.venv_pool):
            if name.startswith(".") or name in used:
                continue
            host.remove(posixpath.join(template.venv_pool, name))
            removed.append(name)
    return removed
