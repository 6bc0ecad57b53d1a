"""Keeping repeated events from flooding the audit log."""

from __future__ import annotations

import time

from django.core.cache import cache


def audit_first_in_interval(key: str, seconds: int = 60) -> bool:
    """Tell whether this is the first `key` event of the current interval.

    Intervals are fixed buckets of the clock, so every process and every cache
    backend agree on them. Without the cache, record rather than lose the event.
    """
    bucket = int(time.time() // seconds)
    try:
        return bool(cache.add(f"audit:once:{key}:{bucket}", 1, seconds * 2))
    except Exception:
        return True
