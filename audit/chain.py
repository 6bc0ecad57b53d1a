"""The hash chain: canonical event bytes, and the hash that links each event to the last."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audit.models import AuditEvent


def canonical_details(details: dict[str, Any]) -> dict[str, Any]:
    """Return details as they read back from a JSON column, so hashing is stable."""
    loaded: dict[str, Any] = json.loads(json.dumps(details, cls=DjangoJSONEncoder))
    return loaded


def canonical_json(event: AuditEvent) -> str:
    """Return the event's hashed fields as canonical JSON (sorted keys, no spaces)."""
    timestamp = event.timestamp.isoformat(timespec="microseconds").replace("+00:00", "Z")
    fields = {
        "id": str(event.id),
        "chain": event.chain,
        "position": event.position,
        "timestamp": timestamp,
        "organization_id": str(event.organization_id) if event.organization_id else None,
        "organization_display": event.organization_display,
        "actor": {"type": event.actor_type, "id": event.actor_id, "display": event.actor_display},
        "action": event.action,
        "resource": {"type": event.resource_type, "id": event.resource_id},
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    """Return SHA-256(prev_hash || canonical JSON of the event), in hex."""
    return hashlib.sha256((prev_hash + canonical_json(event)).encode()).hexdigest()
