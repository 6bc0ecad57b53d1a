"""Recording an event in the outbox, with a delivery per endpoint that wants it."""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.queue import delivery_enqueue


def iso_utc(moment: Any) -> str:
    """Return a datetime as ISO 8601 UTC with `Z`."""
    return str(moment.isoformat()).replace("+00:00", "Z")


@transaction.atomic
def webhook_event_emit(
    *,
    organization_id: uuid.UUID | str,
    type: str,
    data: dict[str, Any],
    endpoint_id: uuid.UUID | str | None = None,
) -> WebhookEvent | None:
    """Record the event and a delivery to each enabled endpoint subscribed to it (and to
    `endpoint_id`, subscribed or not), in the caller's transaction; None if nobody wants it.

    The deliveries are queued once the transaction commits.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(
            organization_id=organization_id, is_enabled=True
        )
        if type in endpoint.event_types or str(endpoint.id) == str(endpoint_id or "")
    ]
    if not endpoints:
        return None
    return _event_record(organization_id, type, data, endpoints)


@transaction.atomic
def webhook_event_broadcast(*, type: str, data: dict[str, Any]) -> int:
    """Record an installation-wide event (a classifier provider's state) once for each
    organization with an enabled endpoint subscribed to it; returns how many organizations."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    subscribed: dict[uuid.UUID, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(is_enabled=True).order_by("organization_id"):
        if type in endpoint.event_types:
            subscribed.setdefault(endpoint.organization_id, []).append(endpoint)
    for organization_id, endpoints in subscribed.items():
        _event_record(organization_id, type, data, endpoints)
    return len(subscribed)


def _event_record(
    organization_id: uuid.UUID | str,
    type: str,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint],
) -> WebhookEvent:
    organization = Organization.objects.get(id=organization_id)
    event_id = uuid.uuid4()
    now = timezone.now()
    payload = {
        "id": str(event_id),
        "type": type,
        "timestamp": iso_utc(now),
        "organization": {
            "id": str(organization.id),
            "slug": organization.slug,
            "name": organization.name,
        },
        # As JSON will carry it: ids and times as strings, whatever the caller handed over.
        "data": json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
    }
    event = WebhookEvent.objects.create(
        id=event_id, organization=organization, type=type, payload=payload, created_at=now
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, enqueued_at=now)
        for endpoint in endpoints
    )
    for delivery in deliveries:
        transaction.on_commit(functools.partial(delivery_enqueue, delivery.id))
    return event
