"""Service tokens on the hot path: their format, their cached record, and their usage counts.

A token is `sk_` + 64 lowercase hex; the last 8 hex are the CRC32 of
`sk_` + the first 56, so a mistyped token is refused without any lookup.
Only its SHA-256 digest is stored; `prefix` (the first 12 characters) is a
non-secret handle for people and commands.

The record a request needs is cached under `auth:tok:<digest>` and replaced
after every committed change (revocation writes a tombstone readers never
overwrite). Uses are counted in the cache and flushed to `TokenUsageDay`
rows by `token_usage_flush` (beat, on demand, and by the web process itself
when the cache lives in its memory).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.caching.invalidations import cache_write, invalidation_publish
from accounts.models import ServiceToken, TokenUsageDay
from config.lru import BoundedLRU

logger = structlog.get_logger("vantage.tokens")

TOKEN_PATTERN = re.compile(r"sk_[0-9a-f]{64}")
PREFIX_LENGTH = 12  # "sk_" and 9 hex
RECORD_TTL = 300
TOMBSTONE_TTL = 60 * 60 * 24
USAGE_TTL = 60 * 60 * 24 * 3
LAST_USE_INTERVAL = 60


def token_checksum(body: str) -> str:
    """Return the 8-hex CRC32 that ends a token whose first 56 hex are `body`."""
    return format(zlib.crc32(b"sk_" + body.encode()), "08x")


def token_generate() -> str:
    """Return a new secret token."""
    body = secrets.token_hex(28)
    return f"sk_{body}{token_checksum(body)}"


def token_well_formed(value: str) -> bool:
    """Tell whether `value` has a token's shape and a valid checksum (no lookup)."""
    if not TOKEN_PATTERN.fullmatch(value):
        return False
    return hmac.compare_digest(value[-8:], token_checksum(value[3:59]))


def token_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def token_prefix(value: str) -> str:
    return value[:PREFIX_LENGTH]


# --- The cached record -----------------------------------------------------------

# digest -> (organization id, creator id): facts of a token that never change.
token_owners: BoundedLRU[tuple[str, str, str]] = BoundedLRU(size=10_000)


def record_key(digest: str) -> str:
    return f"auth:tok:{digest}"


def token_record(token: ServiceToken) -> dict[str, Any]:
    """Return what authentication needs to know of a token."""
    return {
        "id": str(token.id),
        "organization_id": str(token.organization_id),
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes),
        "created_by_id": str(token.created_by_id) if token.created_by_id else None,
        "expires_at": token.expires_at.timestamp(),
        "revoked_at": token.revoked_at.timestamp() if token.revoked_at else None,
        "rotated": token.revoked_reason == "rotated",
        "allowed_ips": list(token.allowed_ips or ()),
        "family_id": str(token.family_id or token.id),
    }


def token_record_load(value: str, digest: str) -> dict[str, Any] | None:
    """Find the token by prefix and compare digests in constant time; None if unknown."""
    for token in ServiceToken.objects.filter(prefix=token_prefix(value)):
        if hmac.compare_digest(token.digest, digest):
            return token_record(token)
    return None


def token_record_cache(digest: str, record: dict[str, Any]) -> None:
    # add, never set: a change committed meanwhile must win over this read.
    cache_write("add", cache.add, record_key(digest), record, RECORD_TTL)


def token_changed(token: ServiceToken) -> None:
    """Make the token's new state effective everywhere once the change commits."""
    record = token_record(token)
    revoked = token.revoked_at is not None and token.revoked_at <= timezone.now()
    ttl = TOMBSTONE_TTL if revoked else RECORD_TTL

    key = record_key(token.digest)
    transaction.on_commit(lambda: invalidation_publish(key, lambda: cache.set(key, record, ttl)))


# --- Usage ----------------------------------------------------------------------------


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
