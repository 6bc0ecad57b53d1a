"""Delivering events to endpoints: one attempt at a time, retried with backoff, logged.

A delivery is leased by the worker making its attempt; a worker that dies lets
the lease run out, and the periodic `deliveries_due_enqueue` hands the delivery
to the queue again, so no event is lost (at least once: receivers deduplicate
by `webhook-id`).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from webhooks import metrics
from webhooks.errors import EndpointDisabled, TargetRefused
from webhooks.models import (
    WebhookAttempt,
    WebhookCallback,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.network import webhook_post
from webhooks.queue import delivery_enqueue
from webhooks.services.endpoints import endpoint_disable_failing, endpoint_signing_secrets
from webhooks.services.events import webhook_event_emit
from webhooks.signing import signature_header

logger = structlog.get_logger("vantage.webhooks")

# An attempt ends by its deadline (WEBHOOK_TIMEOUT_SECONDS in all); its lease outlives that
# generously (resolving the host, a slow database) before another worker may take over.
LEASE_TIMEOUTS = 3
LEASE_MARGIN_SECONDS = 5
# An endpoint at its in-flight cap: the delivery waits this long (up to twice) and tries again.
BUSY_RETRY_SECONDS = 5
# Retries due within this many seconds ride the queue's countdown; later ones the periodic check.
COUNTDOWN_MAX_SECONDS = 60
JITTER = 0.2
# A delivery whose message should have reached a worker this long ago is handed again.
REQUEUE_AFTER_SECONDS = 60


@dataclass(frozen=True)
class AttemptResult:
    outcome: str
    status_code: int | None
    error: str
    body: str
    duration_ms: int


def retry_delay(attempts_made: int) -> float | None:
    """Return the seconds to wait after `attempts_made` failed attempts (None: give up)."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    if attempts_made > len(schedule):
        return None
    return float(schedule[attempts_made - 1]) * (1 + random.uniform(0, JITTER))  # noqa: S311


def delivery_attempt(delivery_id: uuid.UUID | str) -> str:
    """Make one attempt of a due delivery; return what happened: succeeded, failed, refused,
    or why no attempt was made (busy, not_due, not_pending, endpoint_disabled)."""
    claimed = _claim(delivery_id)
    if isinstance(claimed, str):
        return claimed
    delivery, endpoint = claimed
    if not endpoint.is_enabled:
        _give_up(delivery, "The endpoint is disabled.")
        return "endpoint_disabled"
    result = _send(delivery.event, endpoint)
    _record(delivery, endpoint, result)
    return result.outcome


def _claim(delivery_id: uuid.UUID | str) -> tuple[WebhookDelivery, WebhookEndpoint] | str:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .filter(id=delivery_id, status=WebhookDelivery.Status.PENDING)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .first()
        )
        if delivery is None:
            return "not_pending"
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return "not_due"
        endpoint = WebhookEndpoint.objects.get(id=delivery.endpoint_id)
        # Claims for one organization take turns, so the in-flight counts below stay true.
        Organization.objects.select_for_update().filter(id=endpoint.organization_id).first()
        leased = WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, leased_until__gt=now
        )
        if (
            leased.filter(endpoint_id=endpoint.id).count()
            >= settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT
            or leased.filter(endpoint__organization_id=endpoint.organization_id).count()
            >= settings.WEBHOOK_MAX_IN_FLIGHT_PER_ORGANIZATION
        ):
            # Spread the waiting ones, so they do not all come back in the same second.
            wait = BUSY_RETRY_SECONDS * random.uniform(1, 2)  # noqa: S311
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            delivery.enqueued_at = delivery.next_attempt_at
            delivery.save(update_fields=["next_attempt_at", "enqueued_at"])
            transaction.on_commit(lambda: delivery_enqueue(delivery.id, countdown=wait))
            return "busy"
        lease = LEASE_TIMEOUTS * settings.WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
        delivery.leased_until = now + timedelta(seconds=lease)
        delivery.attempts += 1
        delivery.save(update_fields=["leased_until", "attempts"])
    delivery.event = WebhookEvent.objects.get(id=delivery.event_id)
    return delivery, endpoint


def _send(event: WebhookEvent, endpoint: WebhookEndpoint) -> AttemptResult:
    body = json.dumps(event.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": str(event.id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets_in_use=endpoint_signing_secrets(endpoint),
            message_id=str(event.id),
            timestamp=timestamp,
            body=body,
        ),
    }
    started = time.perf_counter()
    try:
        response = webhook_post(url=endpoint.url, body=body, headers=headers)
    except TargetRefused as exc:
        return AttemptResult(WebhookAttempt.Outcome.REFUSED, None, str(exc), "", 0)
    except httpx.TimeoutException:
        error = f"No answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g} s."
        return AttemptResult("failed", None, error, "", _elapsed_ms(started))
    except httpx.HTTPError as exc:
        error = f"The connection failed: {type(exc).__name__}: {str(exc)[:300]}"
        return AttemptResult("failed", None, error, "", _elapsed_ms(started))
    duration = _elapsed_ms(started)
    metrics.ATTEMPT_SECONDS.observe(duration / 1000)
    code = response.status_code
    if 200 <= code < 300:
        return AttemptResult("succeeded", code, "", response.body, duration)
    error = f"The endpoint answered {code}" + (
        " (redirects are not followed)." if 300 <= code < 400 else "."
    )
    return AttemptResult("failed", code, error, response.body, duration)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


@transaction.atomic
def _record(delivery: WebhookDelivery, endpoint: WebhookEndpoint, result: AttemptResult) -> None:
    now = timezone.now()
    succeeded = result.outcome == "succeeded"
    delay = None if succeeded else retry_delay(delivery.attempts)
    next_at = now + timedelta(seconds=delay) if delay is not None else None
    WebhookAttempt.objects.create(
        delivery=delivery,
        endpoint=endpoint,
        attempt=delivery.attempts,
        outcome=result.outcome,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        error=result.error[:500],
        response_body=result.body,
        next_attempt_at=next_at,
        created_at=now,
    )
    metrics.DELIVERY_ATTEMPTS.labels(outcome=result.outcome).inc()
    delivery.leased_until = None
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error[:500]
    delivery.next_attempt_at = next_at
    countdown = delay is not None and delay <= COUNTDOWN_MAX_SECONDS
    delivery.enqueued_at = next_at if countdown else None
    if succeeded or next_at is None:
        delivery.status = "succeeded" if succeeded else "failed"
        delivery.finished_at = now
        metrics.DELIVERIES_FINISHED.labels(status=delivery.status).inc()
    delivery.save()
    logger.info(
        "webhook_attempt",
        delivery_id=str(delivery.id),
        outcome=result.outcome,
        status_code=result.status_code,
        attempt=delivery.attempts,
    )
    if succeeded:
        WebhookEndpoint.objects.filter(id=endpoint.id).update(failing_since=None)
        return
    _failing_note(endpoint, now)
    if delay is not None and countdown:
        transaction.on_commit(lambda: delivery_enqueue(delivery.id, countdown=delay + 0.5))


def _failing_note(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Remember since when the endpoint fails; disable it once that is too long ago."""
    WebhookEndpoint.objects.filter(id=endpoint.id, failing_since__isnull=True).update(
        failing_since=now
    )
    endpoint_disable_failing(endpoint_id=endpoint.id)


@transaction.atomic
def _give_up(delivery: WebhookDelivery, reason: str) -> None:
    delivery.status = WebhookDelivery.Status.FAILED
    delivery.finished_at = timezone.now()
    delivery.leased_until = None
    delivery.next_attempt_at = None
    delivery.last_error = reason
    delivery.save()
    metrics.DELIVERIES_FINISHED.labels(status=delivery.status).inc()


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the delivery's event to its endpoint again, as a new delivery with the same event id."""
    if not delivery.endpoint.is_enabled:
        raise EndpointDisabled()
    again = WebhookDelivery.objects.create(
        event_id=delivery.event_id,
        endpoint_id=delivery.endpoint_id,
        next_attempt_at=timezone.now(),
        enqueued_at=timezone.now(),
    )
    transaction.on_commit(lambda: delivery_enqueue(again.id))
    return again


@transaction.atomic
def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `ping` event to this endpoint alone; return its delivery."""
    if not endpoint.is_enabled:
        raise EndpointDisabled()
    event = webhook_event_emit(
        organization_id=endpoint.organization_id,
        type="ping",
        data={"endpoint_id": str(endpoint.id), "message": "A test event from Vantage."},
        endpoint_id=endpoint.id,
    )
    # The endpoint is enabled, so the event exists and holds its delivery.
    return WebhookDelivery.objects.get(event_id=getattr(event, "id", None), endpoint=endpoint)


def deliveries_due_enqueue(*, limit: int = 1000) -> int:
    """Hand every due delivery that no worker holds and whose message is not on its way (a
    retry due later than a countdown's reach, a lost message, a worker that died); returns
    how many were handed."""
    now = timezone.now()
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
    metrics.BACKLOG.set(pending.count())
    lost_before = now - timedelta(seconds=REQUEUE_AFTER_SECONDS)
    due = list(
        pending.filter(next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        # Not on its way: never handed, handed long ago, or taken by a worker that died.
        .filter(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=lost_before)
            | Q(leased_until__isnull=False)
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    handed = 0
    for delivery_id in due:
        if not delivery_enqueue(delivery_id):
            break  # the broker is down: the rest waits for the next round
        WebhookDelivery.objects.filter(id=delivery_id).update(enqueued_at=now, leased_until=None)
        handed += 1
    return handed


def log_purge(*, now: datetime | None = None) -> int:
    """Delete events (with their deliveries and log) older than the retention; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    WebhookAttempt.objects.filter(created_at__lt=cutoff).delete()
    WebhookCallback.objects.filter(created_at__lt=cutoff).delete()
    _, deleted = WebhookEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted.get(WebhookEvent._meta.label, 0)
