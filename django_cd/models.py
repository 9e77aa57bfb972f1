"""``Deployment``: the deploy history mirrored into the target's database.

The files on the host (``history.jsonl``, ``release.json``) stay the source
of truth; these rows are for reading in the admin.
"""

from __future__ import annotations

from django.db import models


class Deployment(models.Model):
    """One deploy or rollback of an environment."""

    class Action(models.TextChoices):
        DEPLOY = "deploy", "deploy"
        ROLLBACK = "rollback", "rollback"

    environment = models.CharField(max_length=32)
    action = models.CharField(max_length=16, choices=Action.choices)
    status = models.CharField(max_length=16)
    release = models.CharField(max_length=64, blank=True)
    commit = models.CharField(max_length=40, blank=True)
    previous = models.CharField(max_length=64, blank=True)
    deployed_by = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()
    failed_step = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    backup = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["environment", "-at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.release} to {self.environment}: {self.status}"


class FlagRule(models.Model):
    """What django-cd adds to a django-waffle flag: conditions, a schedule, inheritance.

    Keyed by the waffle flag's name (not a foreign key: waffle's flag model is
    swappable and a rule may be written before its flag exists, e.g. by an import).
    """

    name = models.CharField(max_length=100, unique=True)
    # A ``parent:child`` flag that defers to its parent (gargoyle's "inherit").
    inherit = models.BooleanField(default=False)
    # [{"kind": "environment", "value": ["staging"], "exclude": false}, ...]
    conditions = models.JSONField(default=list, blank=True)
    on_after = models.DateTimeField(null=True, blank=True)
    off_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "feature switch"
        verbose_name_plural = "feature switches"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FlagChange(models.Model):
    """One change of a flag's state: the audit log (admin, command, import, rollback)."""

    name = models.CharField(max_length=100, db_index=True)
    at = models.DateTimeField()
    by = models.CharField(max_length=200)
    source = models.CharField(max_length=16)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    release = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "flag change"

    def __str__(self) -> str:
        return f"{self.name} by {self.by} at {self.at:%Y-%m-%d %H:%M}"
