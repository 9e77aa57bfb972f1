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
