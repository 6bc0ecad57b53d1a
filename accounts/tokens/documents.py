"""A service token, and a member, as JSON documents: what the API shows, for webhook payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from accounts.models import Membership, ServiceToken


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def token_document(token: ServiceToken) -> dict[str, Any]:
    """Return the token as GET /api/v1/tokens/{id} shows it; never its secret or digest."""
    now = timezone.now()
    revoked = token.revoked_at if token.revoked_at is not None and token.revoked_at <= now else None
    rotating = token.revoked_reason == "rotated" and token.revoked_at is not None
    return {
        "id": str(token.id),
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes),
        "created_by": token.created_by.username if token.created_by else None,
        "created_at": _when(token.created_at),
        "expires_at": _when(token.expires_at),
        "last_used_at": _when(token.last_used_at),
        "last_used_ip": token.last_used_ip,
        "usage_count": token.usage_count,
        "status": token.status_at(now),
        "revoked_at": _when(revoked),
        "revoked_reason": token.revoked_reason,
        "grace_until": _when(token.revoked_at) if rotating else None,
        "rotated_from": str(token.rotated_from_id) if token.rotated_from_id else None,
        "family_id": str(token.family_id) if token.family_id else None,
        "rotated_by": token.rotated_by_display,
        "self_rotated": token.self_rotated,
        "allowed_ips": list(token.allowed_ips),
    }


def member_document(membership: Membership) -> dict[str, Any]:
    """Return the member as GET /api/v1/orgs/current/members lists them."""
    return {
        "user_id": str(membership.user_id),
        "username": membership.user.username,
        "email": membership.user.email,
        "name": membership.user.name,
        "role": membership.role,
        "groups": [group.name for group in membership.groups.all()],
        "joined_at": _when(membership.created_at),
    }
