"""The log of dropped cache keys that processes with a cache of their own follow.

With the cache in each process's memory (no Redis), a process that revokes a
session or a token, or changes an organization, appends the keys it changed
to `CacheInvalidation`; every web process reads the entries it has not seen
before it resolves a credential and drops those keys from its own memory.

Asking the database on every request would cost a query (and, with SQLite,
a connection: they are closed after each request). With SQLite the writers
therefore also append a byte to a stamp file beside the database file, which
every process using the database shares: the log is read only when the
stamp's size or time has changed, so a request pays one `stat`. With a server
database (which processes on other hosts may share) the log is read on every
request: one indexed query that finds nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.utils import timezone

from accounts.models import CacheInvalidation

logger = structlog.get_logger("vantage.auth")

# Far longer than any cached copy an entry drops lives (minutes): a process
# idle for longer holds nothing the entry could still make stale.
LOG_RETENTION = timedelta(days=1)
BATCH = 1000
# The stamp grows a byte an entry; past this it is emptied when the log is pruned.
STAMP_MAX_BYTES = 64 * 1024
TABLE = CacheInvalidation._meta.db_table

Stamp = tuple[int, int] | None


class _Follower:
    """Where this process is in the log, and how often it has dropped keys."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cursor: int | None = None
        self.stamp: Stamp = None
        self.drops = 0


_follower = _Follower()
# The follower's `drops` when the current request of this thread caught up.
_request = threading.local()


LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"


def cache_per_process() -> bool:
    """Tell whether the default cache lives in this process's memory (shared with no other)."""
    # Read from the settings, not the cache handler: this runs on every request.
    return bool(settings.CACHES["default"]["BACKEND"] == LOCAL_MEMORY_CACHE)


@functools.lru_cache(maxsize=8)
def _stamp_beside(engine: str, name: str) -> Path | None:
    if not engine.endswith("sqlite3") or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(f"{name}-invalidations")


def _stamp_path() -> Path | None:
    """Return the stamp file beside the SQLite database (None with any other database)."""
    database = settings.DATABASES["default"]
    return _stamp_beside(str(database["ENGINE"]), str(database["NAME"]))


def _stamp_read(path: Path) -> Stamp:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return (status.st_size, status.st_mtime_ns)


def _stamp_touch() -> None:
    path = _stamp_path()
    if path is None:
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, b".")
        finally:
            os.close(descriptor)
    except OSError as exc:
        # Other processes notice the change only when their cached copies expire.
        logger.exception("invalidation_stamp_unwritable", path=str(path), error=str(exc))


def invalidation_log_append(key: str) -> None:
    """Append `key` to the log, then tell the other processes (once it is committed)."""
    with transaction.atomic():
        database = connections["default"]
        if database.vendor == "postgresql":
            # Entries then become visible in the order of their ids: no follower skips one.
            with database.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        CacheInvalidation.objects.create(key=key)
    transaction.on_commit(_stamp_touch)


def _log_end() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {TABLE}")  # noqa: S608
        return int(cursor.fetchone()[0])


def _log_since(position: int) -> list[tuple[int, str]]:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT id, key FROM {TABLE} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
            [position, BATCH],
        )
        return [(int(entry_id), str(key)) for entry_id, key in cursor.fetchall()]


def invalidations_follow(local_caches: list[Callable[[], None]]) -> None:
    """Drop from this process's memory every key the log holds that it has not seen yet."""
    path = _stamp_path()
    stamp = _stamp_read(path) if path is not None else None
    if stamp is not None and stamp == _follower.stamp and _follower.cursor is not None:
        _request.drops = _follower.drops
        return
    # The stamp is read before the log: an entry appended after this read
    # changes the stamp again, so the next request reads the log again.
    if _follower.cursor is None:
        start = _log_end()
        with _follower.lock:
            _follower.cursor = max(_follower.cursor or 0, start)
    while len(entries := _log_since(_follower.cursor or 0)) == BATCH:
        _drop(entries, local_caches)
    _drop(entries, local_caches)
    _follower.stamp = stamp
    _request.drops = _follower.drops


def _drop(entries: list[tuple[int, str]], local_caches: list[Callable[[], None]]) -> None:
    with _follower.lock:
        position = _follower.cursor or 0
        fresh = [(entry_id, key) for entry_id, key in entries if entry_id > position]
        if not fresh:
            return
        for clear in local_caches:
            clear()
        cache.delete_many(sorted({key for _, key in fresh}))
        _follower.cursor = fresh[-1][0]
        _follower.drops += 1


@contextlib.contextmanager
def write_guard(operation: str) -> Iterator[bool]:
    """Say whether a cache write may go ahead: not if keys were dropped since the request began.

    The request read what it writes before the drop, maybe before the change
    that caused it (a session's state it touches, a token's record); the drop
    and the write exclude each other. Skipping costs only a cache miss.
    """
    seen = getattr(_request, "drops", None)
    if operation not in ("add", "set") or seen is None:
        yield True
        return
    with _follower.lock:
        yield seen == _follower.drops


def invalidation_log_prune() -> int:
    """Remove entries older than the retention; empty a stamp grown large. Return how many."""
    cutoff = timezone.now() - LOG_RETENTION
    deleted, _ = CacheInvalidation.objects.filter(created_at__lt=cutoff).delete()
    path = _stamp_path()
    with contextlib.suppress(OSError):
        if path is not None and path.stat().st_size > STAMP_MAX_BYTES:
            # A change of size all the same: followers read the log once more.
            os.truncate(path, 0)
    return deleted


def invalidations_follow_forget() -> None:
    """Start following the log afresh, with an empty cache (each test does).

    Nothing logged so far concerns an empty cache; the log is read from its
    start the next time it grows, since a test's rolled-back entries leave
    their ids to be used again.
    """
    path = _stamp_path()
    with _follower.lock:
        _follower.cursor = 0
        _follower.stamp = _stamp_read(path) if path is not None else None
        _follower.drops = 0
    _request.__dict__.pop("drops", None)
