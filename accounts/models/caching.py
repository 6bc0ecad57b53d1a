"""The log of cache invalidations a process replays after a cache outage."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CacheInvalidation(models.Model):
    """A shared cache entry to drop that could not be dropped when its change committed.

    Written when the cache is unreachable; replayed (the entry deleted) as soon
    as it is reachable again, before any process trusts what it holds.
    """

    key = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key
