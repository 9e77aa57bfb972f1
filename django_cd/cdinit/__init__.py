"""``cdinit``: bring an existing Django project on board.

It inspects the project (``facts``), works out what it needs (``plan``): the
``DJANGO_CD`` block, ``django_cd`` in ``INSTALLED_APPS``, the release header
middleware first in ``MIDDLEWARE``, settings a deployed release reads from its
environment, the requirement line, and a ``shared/.env`` template per
environment; then shows it as a diff or writes it. A second run finds nothing
to do.
"""

from django_cd.cdinit.changes import FileChange, ManualEdit
from django_cd.cdinit.facts import ProjectError, ProjectFacts, inspect_project
from django_cd.cdinit.plan import SERVERS, Plan, make_plan

__all__ = [
    "SERVERS",
    "FileChange",
    "ManualEdit",
    "Plan",
    "ProjectError",
    "ProjectFacts",
    "inspect_project",
    "make_plan",
]
