"""Predeploy gates: may this commit go to this environment now, and what will happen?

Each gate is a small function returning a :class:`Gate` (``ok``, ``warn`` or
``fail``, a message and a hint); :func:`evaluate` runs them all and changes
nothing. ``manage.py predeploy`` prints them; ``manage.py deploy`` runs them
first and stops on a failure. docs/predeploy.md describes every gate.
"""

from django_cd.gates.result import FAIL, OK, WARN, Gate, Report
from django_cd.gates.run import CannotEvaluate, default_ref, evaluate

__all__ = ["FAIL", "OK", "WARN", "CannotEvaluate", "Gate", "Report", "default_ref", "evaluate"]
