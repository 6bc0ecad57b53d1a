"""Copying audit events to an external sink, at least once.

Each committed event is queued for delivery by its id (by the task's name, so
this module imports no task); a delivery the broker refused waits in
`SinkBacklog` until `sink_backlog_resend` queues it again.
"""

from __future__ import annotations

import httpx
import structlog
from celery import current_app
from django.conf import settings

from audit.documents import event_document
from audit.models import AuditEvent, SinkBacklog
from config import metrics

logger = structlog.get_logger("vantage.audit")

# The Celery task that delivers one event (audit/tasks.py).
EVENT_DELIVER_TASK = "audit.event_deliver"


class SinkUnavailable(Exception):
    """The sink did not accept the event; delivery is retried."""


def sink_enqueue(event_id: str) -> bool:
    """Queue the event's delivery to the sink; False (logged, counted) if the broker is down."""
    try:
        current_app.tasks[EVENT_DELIVER_TASK].apply_async(args=(event_id,), retry=False)
    except Exception as exc:
        metrics.AUDIT_SINK_ENQUEUE_FAILURES.inc()
        logger.warning(
            "audit_sink_enqueue_failed",
            audit_id=event_id,
            error_type=type(exc).__name__,
            error=str(exc)[:300],
        )
        return False
    return True


def sink_backlog_resend(*, limit: int = 500) -> int:
    """Queue again the sink deliveries the broker refused; returns how many were queued.

    Stops at the first refusal: the broker is still down, the rest waits.
    """
    queued = 0
    for entry in SinkBacklog.objects.order_by("created_at", "id")[:limit]:
        if not sink_enqueue(str(entry.event_id)):
            break
        entry.delete()
        queued += 1
    return queued


def event_deliver(event_id: str) -> None:
    """POST one event to AUDIT_SINK_URL; the event id is the Idempotency-Key.

    Raises SinkUnavailable (or httpx.TransportError) when a later try may succeed.
    """
    event = AuditEvent.objects.filter(id=event_id).first()
    if event is None or not settings.AUDIT_SINK_URL:
        return  # purged meanwhile, or the sink was switched off
    headers = {"Idempotency-Key": str(event.id), "Content-Type": "application/json"}
    if settings.AUDIT_SINK_TOKEN:
        headers["Authorization"] = f"Bearer {settings.AUDIT_SINK_TOKEN}"
    response = httpx.post(
        settings.AUDIT_SINK_URL,
        json=event_document(event),
        headers=headers,
        timeout=settings.AUDIT_SINK_TIMEOUT,
    )
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise SinkUnavailable(f"the audit sink answered {response.status_code}")
    if response.status_code >= 400:
        # The sink refuses this event for good; retrying cannot help.
        logger.error("audit_sink_refused", audit_id=event_id, status=response.status_code)
        return
    logger.info("audit_sink_delivered", audit_id=event_id, status=response.status_code)
