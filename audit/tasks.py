"""Delivering audit events to an external sink, at least once."""

from __future__ import annotations

import httpx
import structlog
from celery import shared_task
from django.conf import settings

from audit.api.serializers import event_document
from audit.models import AuditEvent

logger = structlog.get_logger("vantage.audit")


class SinkUnavailable(Exception):
    """The sink did not accept the event; delivery is retried."""


@shared_task(
    name="audit.event_deliver",
    autoretry_for=(SinkUnavailable, httpx.TransportError),
    max_retries=10,
    retry_backoff=5,
    retry_backoff_max=600,
)
def audit_event_deliver(event_id: str) -> None:
    """POST one event to AUDIT_SINK_URL; the event id is the Idempotency-Key."""
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


@shared_task(name="audit.sink_backlog_resend")
def audit_sink_backlog_resend() -> int:
    """Queue again the sink deliveries refused while the broker was down."""
    from audit.services import sink_backlog_resend

    return sink_backlog_resend()
