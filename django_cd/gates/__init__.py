"""Predeploy gates: may this commit go to this environment now, and what will happen?

Each gate is a small function returning a :class:`Gate` (``ok``, ``warn`` or
``fail``, a message and a hint); :func:`evaluate` runs them all and changes
nothing. ``manage.py predeploy`` prints them; ``manage.py deploy`` runs them
first and stops on a failure. docs/predeploy.md describes every gate.

``evaluate`` and its companions are imported when first used: the gates' system
checks (``django_cd.gates.checks``), loaded by every Django process of the
project, do not need the deploy engine that running the gates imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_cd.gates.result import FAIL, OK, WARN, Gate, Report

if TYPE_CHECKING:
    from django_cd.gates.run import CannotEvaluate, default_ref, evaluate

__all__ = ["FAIL", "OK", "WARN", "CannotEvaluate", "Gate", "Report", "default_ref", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in ("CannotEvaluate", "default_ref", "evaluate"):
        from django_cd.gates import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
