"""The shared counter: one row per named counter (the demo uses one, "shared")."""
from __future__ import annotations

from django.db import models


class Counter(models.Model):
    """A named integer that every visitor can change."""

    name = models.SlugField(unique=True)
    value = models.IntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
