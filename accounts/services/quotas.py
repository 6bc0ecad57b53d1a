"""The daily upload quota: counted in the database, exactly, in the uploader's transaction.

The count is also copied to the cache once each upload commits, so that the limits
answer can read it in the credential's round trip instead of asking the database.
The copy only grows within a day (a rolled-back upload never reaches it), and a copy
the cache failed to take is at most `QUOTA_COPY_SECONDS` old.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone
from django_redis import get_redis_connection

from accounts import metrics
from accounts.caching.invalidations import cache_write
from accounts.errors import QuotaExceeded
from accounts.models import UploadDay
from config.ids import Id


def quota_day_bounds(now: dt.datetime | None = None) -> tuple[dt.date, dt.datetime]:
    """Return today's UTC date and the moment the quota resets (the next UTC midnight)."""
    now = (now or timezone.now()).astimezone(dt.UTC)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return now.date(), tomorrow


_ORGANIZATION = UploadDay._meta.get_field("organization").target_field
_DAY = UploadDay._meta.get_field("day")
# Standard SQL quoting, which PostgreSQL and SQLite both read.
_UPLOADS_TODAY_SQL = (
    'SELECT "count" FROM "accounts_uploadday" WHERE "organization_id" = %s AND "day" = %s'
)


def used_today_key(organization_id: Id, day: dt.date | None = None) -> str:
    """The cache key of the organization's copy of today's (or `day`'s) upload count."""
    return f"quota:used:{organization_id}:{(day or quota_day_bounds()[0]).isoformat()}"


def uploads_today(*, organization_id: Id, prefetched: dict[str, Any] | None = None) -> int:
    """Return how many uploads the organization has made today (UTC).

    From the copy the credential's round trip read (`prefetched`) when it holds
    one; else from the database (one indexed row, read with the statement written
    once rather than compiled by the ORM each time), leaving a copy for next time.
    """
    day, _ = quota_day_bounds()
    key = used_today_key(organization_id, day)
    if prefetched and isinstance(prefetched.get(key), int):
        return int(prefetched[key])
    used = _uploads_on(organization_id=organization_id, day=day)
    cache_write("add", cache.add, key, used, settings.QUOTA_COPY_SECONDS)
    return used


def _uploads_on(*, organization_id: Id, day: dt.date) -> int:
    connection = connections[router.db_for_read(UploadDay)]
    params = [
        _ORGANIZATION.get_db_prep_value(organization_id, connection),
        _DAY.get_db_prep_value(day, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPLOADS_TODAY_SQL, params)
        row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


# Keep the larger count: copies from uploads that commit close together may arrive
# out of order, and within a day the count only grows.
_COPY_IF_LARGER = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
"""


def _used_today_copy(key: str, used: int) -> None:
    if settings.REDIS_URL:
        client = get_redis_connection("default")
        client.eval(_COPY_IF_LARGER, 1, cache.make_key(key), used, settings.QUOTA_COPY_SECONDS)
    else:
        cache.set(key, used, settings.QUOTA_COPY_SECONDS)


@transaction.atomic
def upload_quota_consume(*, organization_id: Id, limit: int, tier: str, count: int = 1) -> int:
    """Count `count` uploads against today's quota, or raise QuotaExceeded; return the new total.

    One conditional update: concurrent uploads never pass the limit, and an
    upload whose transaction rolls back gives its place back.
    """
    day, resets_at = quota_day_bounds()
    try:
        with transaction.atomic():
            UploadDay.objects.get_or_create(organization_id=organization_id, day=day)
    except IntegrityError:
        pass  # created meanwhile by a concurrent upload
    updated = UploadDay.objects.filter(
        organization_id=organization_id, day=day, count__lte=limit - count
    ).update(count=F("count") + count)
    if not updated:
        metrics.RATE_LIMIT_REJECTIONS.labels(tier=tier, reason="daily_quota").inc()
        raise QuotaExceeded(limit, resets_at)
    used = _uploads_on(organization_id=organization_id, day=day)
    key = used_today_key(organization_id, day)
    transaction.on_commit(lambda: cache_write("copy", _used_today_copy, key, used))
    return used
