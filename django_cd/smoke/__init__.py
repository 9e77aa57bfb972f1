"""Smoke checks: HTTP probes of a running site, declared per environment.

``SmokeRun(env, url, release).run()`` gives a :class:`SmokeReport`; the
``smoketest`` command prints it, and the deploy runs it after each switch.
"""

from django_cd.smoke.config import SmokeCheck
from django_cd.smoke.run import CheckResult, Credentials, SmokeReport, SmokeRun

__all__ = ["CheckResult", "Credentials", "SmokeCheck", "SmokeReport", "SmokeRun"]
