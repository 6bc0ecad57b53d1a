"""A service token's record on the hot path: what authentication needs, cached.

The record a request needs is cached under `auth:tok:<digest>` and replaced
after every committed change (revocation writes a tombstone readers never
overwrite).
"""

from __future__ import annotations

import hmac
from typing import TypedDict

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.caching.invalidations import cache_write, invalidation_publish
from accounts.models import ServiceToken
from accounts.tokens.format import token_prefix
from config.lru import BoundedLRU


class TokenRecord(TypedDict):
    """What authentication needs to know of a token (`auth:tok:<digest>`); times in epoch s."""

    id: str
    organization_id: str
    name: str
    prefix: str
    scopes: list[str]
    created_by_id: str | None
    expires_at: float
    revoked_at: float | None
    # Revoked by a rotation: it works until `revoked_at`, the end of its grace.
    rotated: bool
    allowed_ips: list[str]
    family_id: str


RECORD_TTL = 300
TOMBSTONE_TTL = 60 * 60 * 24

# --- The cached record -----------------------------------------------------------

# digest -> (organization id, creator id): facts of a token that never change.
token_owners: BoundedLRU[tuple[str, str, str]] = BoundedLRU(size=10_000)


def record_key(digest: str) -> str:
    return f"auth:tok:{digest}"


def token_record(token: ServiceToken) -> TokenRecord:
    """Return what authentication needs to know of a token."""
    return {
        "id": str(token.id),
        "organization_id": str(token.organization_id),
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes),
        "created_by_id": str(token.created_by_id) if token.created_by_id else None,
        "expires_at": token.expires_at.timestamp(),
        "revoked_at": token.revoked_at.timestamp() if token.revoked_at else None,
        "rotated": token.revoked_reason == "rotated",
        "allowed_ips": list(token.allowed_ips or ()),
        "family_id": str(token.family_id or token.id),
    }


def token_record_load(value: str, digest: str) -> TokenRecord | None:
    """Find the token by prefix and compare digests in constant time; None if unknown."""
    for token in ServiceToken.objects.filter(prefix=token_prefix(value)):
        if hmac.compare_digest(token.digest, digest):
            return token_record(token)
    return None


def token_record_cache(digest: str, record: TokenRecord) -> None:
    # add, never set: a change committed meanwhile must win over this read.
    cache_write("add", cache.add, record_key(digest), record, RECORD_TTL)


def token_changed(token: ServiceToken) -> None:
    """Make the token's new state effective everywhere once the change commits."""
    record = token_record(token)
    revoked = token.revoked_at is not None and token.revoked_at <= timezone.now()
    ttl = TOMBSTONE_TTL if revoked else RECORD_TTL

    key = record_key(token.digest)
    transaction.on_commit(lambda: invalidation_publish(key, lambda: cache.set(key, record, ttl)))
