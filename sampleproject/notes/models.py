from django.db import models
from django.urls import reverse


class Note(models.Model):
    """A note pinned to the board."""

    title = models.CharField(max_length=120)
    body = models.TextField(blank=True)
    author = models.CharField(max_length=80, blank=True)
    pinned = models.BooleanField(default=False, help_text="Pinned notes stay on top.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pinned", "-created_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("notes:list")
