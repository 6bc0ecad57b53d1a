"""Service tokens: create, narrow, rotate, revoke, and announce their expiry; all audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, Role, ServiceToken, TokenExpiryNotice, User
from accounts.principal import Principal
from accounts.roles import PERMISSIONS
from accounts.service_tokens import (
    token_changed,
    token_digest,
    token_generate,
    token_prefix,
)
from audit.services import audit_record
from config.errors import InvalidInput

logger = structlog.get_logger("vantage.tokens")


@dataclass(frozen=True)
class IssuedToken:
    """A token just made, with its secret: shown once, never stored."""

    token: ServiceToken
    secret: str


def _audit(token: ServiceToken, action: str, **details: Any) -> None:
    audit_record(
        action=action,
        organization_id=token.organization_id,
        organization_display=token.organization.slug,
        resource_type="service_token",
        resource_id=str(token.id),
        details={"name": token.name, "prefix": token.prefix, **details},
    )


def _max_lifetime(organization: Organization) -> int:
    limit = organization.token_max_lifetime_days
    return (
        min(settings.TOKEN_MAX_LIFETIME_DAYS, limit) if limit else settings.TOKEN_MAX_LIFETIME_DAYS
    )


def _checked_scopes(scopes: Iterable[str], grantor: Principal | None) -> list[str]:
    chosen = sorted(set(scopes))
    if not chosen:
        raise InvalidInput("A token needs at least one scope.", field="scopes")
    unknown = [scope for scope in chosen if scope not in PERMISSIONS]
    if unknown:
        raise InvalidInput(f"Unknown scope {', '.join(unknown)}.", field="scopes")
    if grantor is not None:
        lacking = [scope for scope in chosen if scope not in grantor.permissions]
        if lacking:
            raise InvalidInput(
                f"You cannot grant a scope you lack: {', '.join(lacking)}.", field="scopes"
            )
    return chosen


def _checked_lifetime(organization: Organization, days: int) -> int:
    ceiling = _max_lifetime(organization)
    if not 1 <= days <= ceiling:
        raise InvalidInput(
            f"expires_in_days must be between 1 and {ceiling} for this organization.",
            field="expires_in_days",
        )
    return days


def _issue(
    *, organization: Organization, name: str, scopes: list[str], created_by: User | None,
    lifetime: timedelta, rotated_from: ServiceToken | None = None,
) -> IssuedToken:  # fmt: skip
    secret = token_generate()
    now = timezone.now()
    token = ServiceToken.objects.create(
        organization=organization,
        name=name,
        scopes=scopes,
        created_by=created_by,
        created_at=now,
        expires_at=now + lifetime,
        rotated_from=rotated_from,
        prefix=token_prefix(secret),
        digest=token_digest(secret),
    )
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def token_create(
    *, organization: Organization, name: str, scopes: Iterable[str],
    expires_in_days: int | None = None, created_by: User | None,
    grantor: Principal | None = None,
) -> IssuedToken:  # fmt: skip
    """Create a token; `grantor` (the caller) cannot grant scopes it lacks."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("The name must have 1 to 100 characters.", field="name")
    chosen = _checked_scopes(scopes, grantor)
    days = _checked_lifetime(
        organization,
        min(settings.TOKEN_DEFAULT_LIFETIME_DAYS, _max_lifetime(organization))
        if expires_in_days is None
        else expires_in_days,
    )
    issued = _issue(
        organization=organization, name=name, scopes=chosen, created_by=created_by,
        lifetime=timedelta(days=days),
    )  # fmt: skip
    _audit(issued.token, "token.created", scopes=chosen, expires_in_days=days)
    return issued


@transaction.atomic
def token_update(
    *, token: ServiceToken, name: str | None = None, scopes: Iterable[str] | None = None
) -> ServiceToken:
    """Rename a token or narrow its scopes (never widen them)."""
    changes: dict[str, Any] = {}
    if name is not None and name.strip() != token.name:
        if not 1 <= len(name.strip()) <= 100:
            raise InvalidInput("The name must have 1 to 100 characters.", field="name")
        changes["name"] = {"from": token.name, "to": name.strip()}
        token.name = name.strip()
    if scopes is not None:
        chosen = _checked_scopes(scopes, None)
        wider = sorted(set(chosen) - set(token.scopes))
        if wider:
            raise InvalidInput(
                f"Scopes may only narrow; {', '.join(wider)} is not in this token's scopes.",
                field="scopes",
            )
        if chosen != sorted(token.scopes):
            changes["scopes"] = {"from": sorted(token.scopes), "to": chosen}
            token.scopes = chosen
    if changes:
        token.save(update_fields=["name", "scopes"])
        token_changed(token)
        _audit(token, "token.updated", **changes)
    return token


@transaction.atomic
def token_revoke(*, token: ServiceToken, reason: str = "") -> bool:
    """Revoke a token now; False if it was already revoked."""
    token = ServiceToken.objects.select_for_update().select_related("organization").get(id=token.id)
    now = timezone.now()
    if token.revoked_at is not None and token.revoked_at <= now:
        return False
    token.revoked_at = now
    token.revoked_reason = (reason or "revoked")[:200]
    token.save(update_fields=["revoked_at", "revoked_reason"])
    token_changed(token)
    _audit(token, "token.revoked", reason=token.revoked_reason)
    return True


@transaction.atomic
def token_rotate(
    *, token: ServiceToken, grace_seconds: int, grantor: Principal | None = None
) -> IssuedToken:
    """Issue a successor with the same name and scopes; the old token works for the grace.

    `grantor` (the caller) must hold every scope of the token: rotating is
    issuing a new secret, and nobody may obtain one with more than they have.
    """
    if not 0 <= grace_seconds <= 86400:
        raise InvalidInput("grace_seconds must be between 0 and 86400.", field="grace_seconds")
    token = ServiceToken.objects.select_for_update().select_related("organization").get(id=token.id)
    now = timezone.now()
    status = token.status_at(now)
    if status != ServiceToken.Status.ACTIVE:
        raise InvalidInput(f"Only an active token can be rotated; this one is {status}.")
    _checked_scopes(token.scopes, grantor)
    lifetime = min(token.expires_at - token.created_at,
                   timedelta(days=_max_lifetime(token.organization)))  # fmt: skip
    issued = _issue(
        organization=token.organization, name=token.name, scopes=list(token.scopes),
        created_by=token.created_by, lifetime=lifetime, rotated_from=token,
    )  # fmt: skip
    token.revoked_at = now + timedelta(seconds=grace_seconds)
    token.revoked_reason = "rotated"
    token.save(update_fields=["revoked_at", "revoked_reason"])
    token_changed(token)
    _audit(token, "token.rotated", successor_id=str(issued.token.id),
           grace_until=token.revoked_at.isoformat())  # fmt: skip
    return issued


@transaction.atomic
def tokens_revoke_all(*, organization: Organization, reason: str) -> int:
    """Emergency: revoke every live token of the organization now; returns how many."""
    if not reason.strip():
        raise InvalidInput("Say why every token is being revoked.", field="reason")
    now = timezone.now()
    live = (
        ServiceToken.objects.select_for_update()
        .select_related("organization")
        .filter(organization=organization, expires_at__gt=now)
        .exclude(revoked_at__lte=now)
    )
    revoked = 0
    for token in live:
        token.revoked_at, token.revoked_reason = now, f"emergency: {reason}"[:200]
        token.save(update_fields=["revoked_at", "revoked_reason"])
        token_changed(token)
        revoked += 1
    audit_record(
        action="token.emergency_revoke",
        organization_id=organization.id,
        organization_display=organization.slug,
        resource_type="organization",
        resource_id=str(organization.id),
        details={"reason": reason, "revoked": revoked},
    )
    return revoked


def tokens_expiring(*, organization: Organization | None, days: int) -> list[ServiceToken]:
    """Active tokens expiring within `days`, soonest first."""
    now = timezone.now()
    tokens = (
        ServiceToken.objects.select_related("organization", "created_by")
        .filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=days))
        .filter(revoked_at__isnull=True)  # a rotating token is being replaced already
        .order_by("expires_at")
    )
    if organization is not None:
        tokens = tokens.filter(organization=organization)
    return list(tokens)


def token_expiry_notify(*, days: int | None = None) -> int:
    """Announce each token's coming expiry once per threshold (audit + mail to org admins).

    The thresholds are the configured ones (7 and 1 days), plus `days` if given.
    """
    thresholds = sorted({*settings.TOKEN_EXPIRY_THRESHOLDS_DAYS, *([days] if days else [])})
    sent = 0
    for token in tokens_expiring(organization=None, days=max(thresholds)):
        remaining = token.expires_at - timezone.now()
        threshold = next(t for t in thresholds if remaining <= timedelta(days=t))
        if _notify_once(token, threshold):
            sent += 1
    return sent


def _notify_once(token: ServiceToken, threshold: int) -> bool:
    try:
        with transaction.atomic():
            TokenExpiryNotice.objects.create(token=token, threshold_days=threshold)
            _audit(token, "token.expiring", expires_at=token.expires_at.isoformat(),
                   threshold_days=threshold)  # fmt: skip
    except IntegrityError:
        return False  # announced at this threshold already
    admins = Membership.objects.filter(
        organization=token.organization, role=Role.ADMIN, user__is_active=True
    ).values_list("user__email", flat=True)
    recipients = [email for email in admins if email]
    if recipients:
        send_mail(
            subject=f"[Vantage] Service token {token.name!r} expires soon",
            message=(
                f"The service token {token.name} ({token.prefix}…) of {token.organization.name} "
                f"expires at {token.expires_at:%Y-%m-%d %H:%M} UTC. Rotate it before then: "
                "POST /api/v1/tokens/{id}/rotate or manage.py rotate_service_token."
            ).replace("{id}", str(token.id)),
            from_email=None,
            recipient_list=recipients,
            fail_silently=False,
        )
    logger.info("token_expiry_notified", token_id=str(token.id), threshold_days=threshold)
    return True
