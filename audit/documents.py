"""An audit event as a JSON document: what the API, the export and the sink show."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEvent


def event_document(event: AuditEvent) -> dict[str, Any]:
    """Return the event as AuditEventSerializer shows it, built directly for bulk export."""
    timestamp = event.timestamp.isoformat()
    return {
        "id": str(event.id),
        "timestamp": timestamp[:-6] + "Z" if timestamp.endswith("+00:00") else timestamp,
        "organization_id": str(event.organization_id) if event.organization_id else None,
        "actor": {"type": event.actor_type, "id": event.actor_id, "display": event.actor_display},
        "action": event.action,
        "resource": {"type": event.resource_type, "id": event.resource_id},
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }
