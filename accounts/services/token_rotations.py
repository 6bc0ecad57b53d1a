"""Service token rotation: a successor with the same name and scopes, the old one working for a
grace; a rotated token presented again revokes its whole family. All audited."""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import RotationInProgress, TokenRevoked
from accounts.identity.principal import Principal
from accounts.models import ServiceToken
from accounts.services.tokens import (
    IssuedToken,
    Rotation,
    _audit,
    _checked_allowed_ips,
    _checked_scopes,
    _issuance_locked,
    _issue,
    _max_lifetime,
)
from accounts.tokens.documents import token_document
from accounts.tokens.records import token_changed
from audit.models import AuditEvent
from audit.services import audit_record
from config.errors import InvalidInput
from webhooks.services.events import webhook_event_emit

logger = structlog.get_logger("vantage.tokens")

MAX_GRACE_SECONDS = 86400
# Requests presenting a token this close to its rotation overlapped with it (the second
# waited for the first's lock, or was sent twice): they are not a reuse of an old token.
CONCURRENT_ROTATION_SECONDS = 5


def _grace_checked(grace_seconds: int) -> int:
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(
            f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS}.", field="grace_seconds"
        )
    return grace_seconds


def _successor_issue(token: ServiceToken, grace_seconds: int, rotation: Rotation) -> IssuedToken:
    """Issue the token's successor (same name, scopes and allow-list; its lifetime again,
    within the policy) and let the token work until its grace ends."""
    now = timezone.now()
    networks = _checked_allowed_ips(token.organization, token.allowed_ips or ())
    lifetime = min(
        token.expires_at - token.created_at, timedelta(days=_max_lifetime(token.organization))
    )
    try:
        with transaction.atomic():
            issued = _issue(
                organization=token.organization,
                name=token.name,
                scopes=list(token.scopes),
                created_by=token.created_by,
                lifetime=lifetime,
                allowed_ips=networks,
                rotation=rotation,
            )
    except IntegrityError:
        # Another request gave the token its successor meanwhile.
        raise RotationInProgress() from None
    token.revoked_at = now + timedelta(seconds=grace_seconds)
    token.revoked_reason = "rotated"
    token.save(update_fields=["revoked_at", "revoked_reason"])
    token_changed(token)
    _audit(
        token,
        "token.rotated",
        successor_id=str(issued.token.id),
        grace_until=token.revoked_at.isoformat(),
        by=rotation.by_display,
        self_rotated=rotation.self_rotated,
    )
    return issued


@transaction.atomic
def token_rotate(
    *, token: ServiceToken, grace_seconds: int, grantor: Principal | None = None
) -> IssuedToken:
    """Issue a successor with the same name and scopes; the old token works for the grace.

    `grantor` (the caller) must hold every scope of the token: rotating is
    issuing a new secret, and nobody may obtain one with more than they have.
    """
    _grace_checked(grace_seconds)
    _issuance_locked(token.organization_id)
    token = (
        ServiceToken.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(id=token.id)
    )
    status = token.status_at(timezone.now())
    if status != ServiceToken.Status.ACTIVE:
        raise InvalidInput(f"Only an active token can be rotated; this one is {status}.")
    _checked_scopes(token.scopes, grantor)
    by = grantor.ref if grantor else "system"
    by_display = grantor.display if grantor else "system"
    return _successor_issue(token, grace_seconds, Rotation(token, by, by_display))


def token_self_rotate(
    *, principal: Principal, grace_seconds: int, presented_at: float
) -> IssuedToken:
    """Rotate the presenting token itself: only the newest token of its family may.

    An older member of the family presented here means a copy of a rotated
    token is in someone's hands: the whole family is revoked. A successor made
    less than CONCURRENT_ROTATION_SECONDS before this request arrived
    (`presented_at`, epoch seconds) comes from a concurrent rotation of the
    same token, a retried request say, and is answered 409 instead.
    """
    _grace_checked(grace_seconds)
    with transaction.atomic():
        _issuance_locked(principal.organization_id)
        token = (
            ServiceToken.objects.select_for_update(of=("self",))
            .select_related("organization", "created_by")
            .get(id=principal.id)
        )
        successor = ServiceToken.objects.filter(rotated_from=token).first()
        if successor is None:
            # Revoked while this request waited for the lock: a revocation is never undone.
            if token.status_at(timezone.now()) != ServiceToken.Status.ACTIVE:
                raise TokenRevoked("The service token has been revoked.")
            rotation = Rotation(token, principal.ref, principal.display, self_rotated=True)
            return _successor_issue(token, grace_seconds, rotation)
        if presented_at - successor.created_at.timestamp() < CONCURRENT_ROTATION_SECONDS:
            raise RotationInProgress()
    raise _reuse_revoked(token)


def token_rotation_reuse(*, token_id: str, revoked_at: float) -> None:
    """A token rotated out, its grace over, was presented to rotate again: revoke its family.

    Within CONCURRENT_ROTATION_SECONDS of its rotation (a rotation without grace and a
    retry of the same request) it is answered 409 instead.
    """
    if time.time() - revoked_at < CONCURRENT_ROTATION_SECONDS:
        raise RotationInProgress()
    token = ServiceToken.objects.select_related("organization").filter(id=token_id).first()
    if token is not None:
        raise _reuse_revoked(token)


def _reuse_revoked(token: ServiceToken) -> TokenRevoked:
    """Revoke the token's family; return the error that answers the request."""
    family_revoke(token=token, reason="rotation reuse detected")
    return TokenRevoked(
        "This token was rotated already and only its newest successor may rotate: presenting "
        "it again revoked every token of its rotation family. Create a new token."
    )


@transaction.atomic
def family_revoke(*, token: ServiceToken, reason: str) -> int:
    """Revoke now every token of the token's rotation family; returns how many were live."""
    _issuance_locked(token.organization_id)
    now = timezone.now()
    family = token.family_id or token.id
    members = (
        ServiceToken.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(family_id=family)
        .order_by("created_at")
    )
    revoked = []
    for member in members:
        if member.revoked_at is not None and member.revoked_at <= now:
            continue
        member.revoked_at, member.revoked_reason = now, reason[:200]
        member.save(update_fields=["revoked_at", "revoked_reason"])
        token_changed(member)
        revoked.append(str(member.id))
    audit_record(
        action="token.rotation_reuse_detected",
        outcome=AuditEvent.Outcome.DENIED,
        organization_id=token.organization_id,
        organization_display=token.organization.slug,
        resource_type="service_token",
        resource_id=str(token.id),
        details={
            "name": token.name,
            "prefix": token.prefix,
            "family_id": str(family),
            "revoked": revoked,
            "reason": reason,
        },
    )
    token.refresh_from_db()
    webhook_event_emit(
        organization_id=token.organization_id,
        type="token.rotation_reuse_detected",
        data={**token_document(token), "revoked_token_ids": revoked},
    )
    logger.warning(
        "token_family_revoked", token_id=str(token.id), family_id=str(family), revoked=len(revoked)
    )
    return len(revoked)
