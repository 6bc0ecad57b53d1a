"""The service token's hot path: a presented `sk_` token resolved to its principal.

Once warm, the token's record, its organization's generation and its creator's member
view come back in one cache round trip, with the request's rate-limit count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

import structlog

from accounts import metrics
from accounts.caching.invalidations import cache_get_many, invalidations_catch_up
from accounts.errors import (
    AuthenticationFailed,
    IpNotAllowed,
    RotatedTokenPresented,
    TokenExpired,
    TokenRevoked,
)
from accounts.identity.principal import (
    Principal,
    generation_key,
    member_key,
    member_view,
    principal_from_view,
)
from accounts.ratelimits.throttling import RequestCounter
from accounts.roles import scope_held
from accounts.tokens.format import token_digest, token_well_formed
from accounts.tokens.records import (
    TokenRecord,
    record_key,
    token_owners,
    token_record_cache,
    token_record_load,
)
from accounts.tokens.usage import token_use_increment
from audit.services import audit_denial
from config.request_context import Actor

logger = structlog.get_logger("vantage.auth")


def _audit_refused_token(record: TokenRecord, reason: str) -> None:
    # Once a minute per token: a client retrying a dead token cannot flood the log.
    audit_denial(
        once_per=f"token-refused:{record['id']}",
        action="token.used_after_revocation",
        organization_id=record["organization_id"],
        actor=Actor("service_token", record["id"], record["name"]),
        resource_type="service_token",
        resource_id=record["id"],
        details={"reason": reason, "prefix": record["prefix"]},
    )


def token_ip_denied(principal: Principal, ip: str | None) -> None:
    metrics.AUTH_FAILURES.labels(code=IpNotAllowed.code).inc()
    logger.warning("token_ip_denied", token_id=principal.id, ip=ip)
    # Once a minute per token: a leaked token tried from elsewhere cannot flood the log.
    audit_denial(
        once_per=f"token-ip-denied:{principal.id}",
        action="token.ip_denied",
        organization_id=principal.organization_id,
        organization_display=principal.organization_slug,
        actor=principal.actor,
        resource_type="service_token",
        resource_id=principal.id,
        details={
            "ip": ip,
            "prefix": principal.token_prefix,
            "allowed_ips": list(principal.allowed_ips),
        },
    )


def _refuse_if_dead(record: TokenRecord) -> None:
    """Raise the 401 for a revoked or expired token (audited at most once a minute)."""
    now = time.time()
    if record["revoked_at"] is not None and record["revoked_at"] <= now:
        _audit_refused_token(record, "revoked")
        if record.get("rotated"):
            raise RotatedTokenPresented(token_id=record["id"], revoked_at=record["revoked_at"])
        raise TokenRevoked("The service token has been revoked.")
    if record["expires_at"] <= now:
        _audit_refused_token(record, "expired")
        raise TokenExpired("The service token has expired.")


def principal_for_token(raw: str, counter: RequestCounter | None = None) -> Principal:
    """Resolve a service token to its principal, or raise a 401 domain error.

    A malformed token (shape or checksum) is refused before any lookup. A
    request's `counter` counts the request and the token's use in the same trip.
    """
    if not token_well_formed(raw):
        raise AuthenticationFailed("The service token is malformed (bad shape or checksum).")
    invalidations_catch_up()
    digest = token_digest(raw)
    # A token's organization and creator never change: once known, the member
    # view is fetched in the same round trip as the token's record.
    owner = token_owners.get(digest)
    keys = [record_key(digest)]
    if owner is not None:
        keys += [generation_key(owner[0]), member_key(owner[0], owner[1])]
        if counter is not None:
            counter.plan(
                kind="service_token",
                principal_id=owner[2],
                organization_id=owner[0],
                user_id=owner[1],
            )
            counter.increments.append(token_use_increment(owner[2]))
    cached = counter.read(keys) if counter is not None else cache_get_many(keys)
    record = cached.get(record_key(digest)) if cached is not None else None
    if record is None:
        record = token_record_load(raw, digest)
        if record is None:
            raise AuthenticationFailed("Unknown service token.")
        if cached is not None:
            token_record_cache(digest, record)
    _refuse_if_dead(record)
    org_id, creator_id = record["organization_id"], record["created_by_id"]
    if creator_id is None:
        raise AuthenticationFailed("The token's creator no longer exists; create a new token.")
    if owner != (org_id, creator_id, record["id"]):
        token_owners.put(digest, (org_id, creator_id, record["id"]))
        cached = cache_get_many([generation_key(org_id), member_key(org_id, creator_id)])
    view, source, generation = member_view(
        organization_id=org_id, user_id=creator_id, cached=cached
    )
    if view["status"] == "org_inactive":
        raise AuthenticationFailed("The organization is deactivated.")
    if view["status"] != "ok":
        raise AuthenticationFailed(
            "The token's creator is no longer an active member; create a new token."
        )
    # The creator's principal, narrowed to the token's scopes and named for the token.
    creator = principal_from_view(view, source=source, generation=generation)
    return token_principal(creator, record)


def token_principal(creator: Principal, record: TokenRecord) -> Principal:
    """Return a token's principal: its creator's, narrowed to its scopes and named for it."""
    scopes = frozenset(record["scopes"])
    return replace(
        creator,
        kind="service_token",
        id=record["id"],
        display=record["name"],
        role=None,
        groups={},
        permissions=effective_scopes(scopes, creator.permissions),
        user_id=None,
        token_prefix=record["prefix"],
        delegated_by=creator.id,
        scopes=scopes,
        allowed_ips=tuple(record.get("allowed_ips") or ()),
        token_family=record.get("family_id") or record["id"],
        email="",
        name="",
    )


def effective_scopes(scopes: Iterable[str], creator_permissions: frozenset[str]) -> frozenset[str]:
    """Return what a token may do: its scopes that its creator may still do."""
    return frozenset(scope for scope in scopes if scope_held(scope, creator_permissions))
