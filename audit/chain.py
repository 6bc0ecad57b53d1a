"""The hash chain: canonical event bytes, and the hash that links each event to the last."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audit.models import AuditEvent


def _stable_numbers(value: Any) -> Any:
    # PostgreSQL keeps JSON numbers as numeric: 1e16 reads back as an integer
    # and -0.0 as 0. Whole floats are stored as integers so every database
    # returns what was hashed.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _stable_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stable_numbers(item) for item in value]
    return value


def canonical_details(details: dict[str, Any]) -> dict[str, Any]:
    """Return details as they read back from a JSON column, so hashing is stable.

    Raises ValueError for values JSON cannot carry (NaN, infinities).
    """
    text = json.dumps(details, cls=DjangoJSONEncoder, allow_nan=False)
    loaded: dict[str, Any] = _stable_numbers(json.loads(text))
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
