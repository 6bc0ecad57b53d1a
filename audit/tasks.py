"""Audit's Celery tasks: thin entry points to the sink's delivery (audit/sink.py)."""

from __future__ import annotations

import httpx
from celery import shared_task

from audit.sink import SinkUnavailable, event_deliver, sink_backlog_resend

__all__ = ["SinkUnavailable", "audit_event_deliver", "audit_sink_backlog_resend"]


@shared_task(
    name="audit.event_deliver",
    autoretry_for=(SinkUnavailable, httpx.TransportError),
    max_retries=10,
    retry_backoff=5,
    retry_backoff_max=600,
)
def audit_event_deliver(event_id: str) -> None:
    """Deliver one event to the sink; retried with backoff while the sink is unavailable."""
    event_deliver(event_id)


@shared_task(name="audit.sink_backlog_resend")
def audit_sink_backlog_resend() -> int:
    """Queue again the sink deliveries refused while the broker was down."""
    return sink_backlog_resend()
