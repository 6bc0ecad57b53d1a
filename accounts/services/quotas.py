"""The daily upload quota: counted in the database, exactly, in the uploader's transaction."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from accounts import metrics
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


def uploads_today(*, organization_id: Id) -> int:
    """Return how many uploads the organization has made today (UTC).

    Asked by every limits answer and upload page: one indexed row, read with
    the statement written once rather than compiled by the ORM each time
    (which costs several times the query itself).
    """
    day, _ = quota_day_bounds()
    connection = connections[router.db_for_read(UploadDay)]
    params = [
        _ORGANIZATION.get_db_prep_value(organization_id, connection),
        _DAY.get_db_prep_value(day, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPLOADS_TODAY_SQL, params)
        row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


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
    return uploads_today(organization_id=organization_id)
