"""A service token's uses: counted in the cache on the hot path, flushed to the database.

Uses are counted in the cache and flushed to `TokenUsageDay` rows by
`token_usage_flush` (beat, on demand, and by the web process itself when the
cache lives in its memory).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import ServiceToken, TokenUsageDay

logger = structlog.get_logger("vantage.tokens")

USAGE_TTL = 60 * 60 * 24 * 3
LAST_USE_INTERVAL = 60


def _usage_key(token_id: str, day: date) -> str:
    return f"tokuse:{token_id}:{day.isoformat()}"


def _last_use_key(token_id: str) -> str:
    return f"toklast:{token_id}"


_last_use_written: dict[str, float] = {}
_last_flush = {"at": time.monotonic()}
_flush_lock = threading.Lock()


def token_use_increment(token_id: str) -> tuple[str, int]:
    """Return the counter of the token's uses today and its TTL, for a caller to add one to."""
    return _usage_key(token_id, datetime.now(UTC).date()), USAGE_TTL


def token_use_count(token_id: str, ip: str | None, *, counted: bool = False) -> None:
    """Count one use of the token unless `counted` (and, at most once a minute, its last use)."""
    now = time.time()
    key = _usage_key(token_id, datetime.fromtimestamp(now, UTC).date())
    try:
        if not counted:
            try:
                cache.incr(key)
            except ValueError:  # the day's first use
                if not cache.add(key, 1, USAGE_TTL):
                    cache.incr(key)
        if now - _last_use_written.get(token_id, 0) >= LAST_USE_INTERVAL:
            cache.set(_last_use_key(token_id), {"at": now, "ip": ip}, USAGE_TTL)
            _last_use_written[token_id] = now
    except Exception:
        logger.warning("token_usage_not_counted", token_id=token_id)
    if settings.TOKEN_USAGE_FLUSH_IN_PROCESS:
        _flush_now_and_then()


def _flush_now_and_then() -> None:
    # An in-process cache is invisible to the worker: this process flushes it.
    if time.monotonic() - _last_flush["at"] < settings.TOKEN_USAGE_FLUSH_SECONDS:
        return
    if not _flush_lock.acquire(blocking=False):
        return
    try:
        _last_flush["at"] = time.monotonic()
        token_usage_flush()
    finally:
        _flush_lock.release()


def token_usage_flush(token_ids: list[str] | None = None) -> int:
    """Move counted uses from the cache into the database; returns how many uses moved."""
    today = timezone.now().date()
    days = [today, today - timedelta(days=1)]
    tokens = ServiceToken.objects.all()
    if token_ids is not None:
        tokens = tokens.filter(id__in=token_ids)
    else:
        recent = timezone.now() - timedelta(days=2)
        tokens = tokens.exclude(revoked_at__lt=recent).exclude(expires_at__lt=recent)
    moved = 0
    ids = [str(token_id) for token_id in tokens.values_list("id", flat=True)]
    for start in range(0, len(ids), 500):
        moved += _flush_batch(ids[start : start + 500], days)
    return moved


def _flush_batch(ids: list[str], days: list[date]) -> int:
    keys = [_usage_key(i, d) for i in ids for d in days] + [_last_use_key(i) for i in ids]
    try:
        values = cache.get_many(keys)
    except Exception:
        logger.warning("token_usage_flush_failed")
        return 0
    moved = 0
    for token_id in ids:
        counts = {d: int(values.get(_usage_key(token_id, d)) or 0) for d in days}
        last = values.get(_last_use_key(token_id))
        if not any(counts.values()) and not last:
            continue
        with transaction.atomic():
            _flush_token(token_id, counts, last)
        for day, count in counts.items():
            if count:
                # Subtract what was written, keeping uses counted meanwhile.
                cache.decr(_usage_key(token_id, day), count)
        moved += sum(counts.values())
    return moved


def _flush_token(token_id: str, counts: dict[date, int], last: dict[str, Any] | None) -> None:
    for day, count in counts.items():
        if not count:
            continue
        row, _ = TokenUsageDay.objects.get_or_create(token_id=uuid.UUID(token_id), date=day)
        TokenUsageDay.objects.filter(id=row.id).update(requests=F("requests") + count)
    changes: dict[str, Any] = {"usage_count": F("usage_count") + sum(counts.values())}
    token = ServiceToken.objects.filter(id=token_id)
    if last:
        used_at = datetime.fromtimestamp(last["at"], UTC)
        token.filter(last_used_at__lt=used_at).update(last_used_at=used_at, last_used_ip=last["ip"])
        token.filter(last_used_at__isnull=True).update(
            last_used_at=used_at, last_used_ip=last["ip"]
        )
    token.update(**changes)
