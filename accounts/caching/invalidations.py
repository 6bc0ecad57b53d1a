"""Safe access to the identity cache, and invalidations that survive its outages.

Revoking a session, changing a token or an organization drops or replaces a
shared cache entry once the change commits. When the cache cannot be reached
at that moment the entry it still holds would be trusted again once it is
back, so the key is kept in the database instead (`CacheInvalidation`) and
deleted from the cache before anything is read from it again:

- by every process that saw the cache fail, on its first successful read
  (which is then read again), with its in-process copies dropped too;
- by a periodic task, for processes that made no call during the outage.

While the cache is unreachable every answer comes from the database.

When the cache lives in each process's memory (the embedded default, no
Redis), a change made by one process (a command, the admin, the worker,
another web process) would never reach the others' copies. The keys to drop
are then appended to the same table, kept as a log: each web process reads
what is new in it before it resolves a credential and drops those keys from
its own memory, so the change is refused on its next request. With SQLite a
stamp file beside the database tells the log has grown (one `stat` a
request); with a server database the log is asked every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from django.core.cache import cache

from accounts import metrics
from accounts.caching.invalidation_log import (
    cache_per_process,
    invalidation_log_append,
    invalidation_log_prune,
    invalidations_follow,
    invalidations_follow_forget,
    write_guard,
)
from accounts.models import CacheInvalidation

logger = structlog.get_logger("vantage.auth")

# Set when a cache call failed in this process; cleared once the deferred
# invalidations are replayed.
_outage_seen = threading.Event()
_local_caches: list[Callable[[], None]] = []


def local_cache_register(clear: Callable[[], None]) -> None:
    """Have `clear` called when this process stops trusting its in-process copies."""
    _local_caches.append(clear)


def _failed(operation: str, exc: Exception) -> None:
    _outage_seen.set()
    metrics.CACHE_FAILURES.labels(operation=operation).inc()
    logger.warning("auth_cache_unreachable", operation=operation, error_type=type(exc).__name__)


def cache_get_many(keys: list[str]) -> dict[str, Any] | None:
    """Return the cached values (one round trip), or None when the cache is unreachable."""
    try:
        found = cache.get_many(keys)
    except Exception as exc:
        cache_read_failed(exc)
        return None
    return cache_read_settled(keys, found)


def cache_read_failed(exc: Exception) -> None:
    """Note that a read of the cache failed (the database answers instead)."""
    _failed("get", exc)


def cache_read_settled(keys: list[str], found: dict[str, Any]) -> dict[str, Any] | None:
    """Return what a successful read of `keys` found, or what is true after an outage."""
    if not _outage_seen.is_set():
        return found
    # The first read after an outage: what it found may predate changes the
    # cache missed, so drop those first and read again.
    if not invalidations_replay():
        return None
    return cache_get_many(keys)


def cache_write(operation: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a cache write; when the cache is unreachable, log and count it and return None.

    With a per-process cache, a write of what a request read is skipped when
    this process has dropped keys since the request began: what it read may
    predate the change whose key was dropped.
    """
    try:
        with write_guard(operation) as allowed:
            return func(*args, **kwargs) if allowed else None
    except Exception as exc:
        _failed(operation, exc)
        return None


def invalidation_publish(key: str, write: Callable[[], Any]) -> None:
    """Run `write` (which replaces or drops `key`); if the cache fails, defer dropping the key."""
    try:
        write()
    except Exception as exc:
        _failed("invalidate", exc)
    else:
        if cache_per_process():
            _log_append(key)
        return
    CacheInvalidation.objects.create(key=key)
    metrics.CACHE_INVALIDATIONS_DEFERRED.inc()
    logger.warning("auth_cache_invalidation_deferred", key=key)


def _log_append(key: str) -> None:
    try:
        invalidation_log_append(key)
    except Exception:
        # The change is committed; other processes see it when their copies expire.
        metrics.CACHE_FAILURES.labels(operation="log").inc()
        logger.exception("auth_invalidation_log_failed", key=key)


def invalidations_catch_up() -> None:
    """Drop from this process's memory what other processes changed (a per-process cache only)."""
    if cache_per_process():
        invalidations_follow(_local_caches)


def invalidations_replay() -> bool:
    """Drop every deferred key from the cache and this process's copies; False if it failed.

    With a per-process cache the table is the log every process follows: only
    entries older than any cached copy they invalidate are removed from it.
    """
    if cache_per_process():
        _outage_seen.clear()
        invalidation_log_prune()
        return True
    for clear in _local_caches:
        clear()
    replayed = 0
    try:
        while pending := list(CacheInvalidation.objects.values_list("id", "key")[:1000]):
            cache.delete_many(sorted({key for _, key in pending}))
            CacheInvalidation.objects.filter(id__in=[pk for pk, _ in pending]).delete()
            replayed += len(pending)
    except Exception as exc:
        _failed("replay", exc)
        return False
    _outage_seen.clear()
    if replayed:
        metrics.CACHE_INVALIDATIONS_REPLAYED.inc(replayed)
        logger.info("auth_cache_invalidations_replayed", count=replayed)
    return True


def cache_outage_forget() -> None:
    """Forget that this process saw the cache fail, and where it was in the log (tests)."""
    _outage_seen.clear()
    invalidations_follow_forget()
