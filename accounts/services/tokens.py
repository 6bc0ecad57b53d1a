"""Service tokens: create, narrow, rotate, revoke, and announce their expiry; all audited."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import TokenRevoked
from accounts.identity.principal import Principal
from accounts.models import Membership, Organization, Role, ServiceToken, TokenExpiryNotice, User
from accounts.roles import SCOPES, scope_held
from accounts.tokens.ip_allow_lists import allowed_ips_clean
from accounts.tokens.records import (
    token_changed,
    token_digest,
    token_generate,
    token_prefix,
)
from audit.models import AuditEvent
from audit.services import audit_record
from config.errors import Conflict, InvalidInput

logger = structlog.get_logger("vantage.tokens")

MAX_GRACE_SECONDS = 86400
# Requests presenting a token this close to its rotation overlapped with it (the second
# waited for the first's lock, or was sent twice): they are not a reuse of an old token.
CONCURRENT_ROTATION_SECONDS = 5
# A keyword argument not given, as distinct from one given as None.
UNCHANGED: Any = object()


class RotationInProgress(Conflict):
    title = "Rotation in progress"
    default_detail = (
        "Another request is rotating this token at the same moment; only one successor is "
        "made. Use the successor that request received."
    )


class TokenNameTaken(Conflict):
    title = "Token name in use"

    def __init__(self, token: ServiceToken) -> None:
        detail = (
            f"A live token is already named {token.name!r} in this organization "
            f"({token.prefix}…). Choose another name, or rotate that token for a new secret."
        )
        super().__init__(detail, errors=[{"field": "name", "message": detail, "code": "taken"}])


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
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown:
        raise InvalidInput(f"Unknown scope {', '.join(unknown)}.", field="scopes")
    if grantor is not None:
        lacking = [scope for scope in chosen if not scope_held(scope, grantor.permissions)]
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


def _checked_allowed_ips(organization: Organization, values: Iterable[str]) -> list[str]:
    cleaned = allowed_ips_clean(values)
    if organization.require_allowed_ips and not cleaned:
        raise InvalidInput(
            "This organization's token policy requires allowed_ips: name the client "
            "networks the token may be used from.",
            field="allowed_ips",
        )
    return cleaned


@dataclass(frozen=True)
class Rotation:
    """Who made a successor, by rotating which token."""

    predecessor: ServiceToken
    by: str
    by_display: str
    self_rotated: bool = False


def _name_free_checked(
    organization: Organization, name: str, *, family_id: uuid.UUID | None = None
) -> None:
    """Refuse the name of a live token (neither revoked nor expired) of the organization.

    Case is ignored: rows differing only by case read as the same token in a list.
    Members of `family_id` (a token being renamed and its rotations) do not count.
    """
    now = timezone.now()
    live = (
        ServiceToken.objects.filter(
            organization=organization, name__iexact=name, expires_at__gt=now
        )
        .exclude(revoked_at__lte=now)
        .order_by("-created_at")
    )
    if family_id is not None:
        live = live.exclude(family_id=family_id)
    found = live.first()
    if found is not None:
        raise TokenNameTaken(found)


def _issuance_locked(organization_id: Any) -> None:
    """Serialize issuing the organization's tokens with revoking them all or by family.

    Without it, a successor committed while an emergency revocation waits for its
    predecessor's row lock is missing from that revocation's snapshot and stays
    live. Taken before any token's row lock, always in that order. FOR NO KEY
    UPDATE: rows referring to the organization can still be inserted meanwhile.
    """
    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(id=organization_id)
        .values_list("id", flat=True)
    )


def _issue(
    *, organization: Organization, name: str, scopes: list[str], created_by: User | None,
    lifetime: timedelta, allowed_ips: list[str], rotation: Rotation | None = None,
) -> IssuedToken:  # fmt: skip
    secret = token_generate()
    now = timezone.now()
    token_id = uuid.uuid4()
    predecessor = rotation.predecessor if rotation else None
    token = ServiceToken.objects.create(
        id=token_id,
        organization=organization,
        name=name,
        scopes=scopes,
        created_by=created_by,
        created_at=now,
        expires_at=now + lifetime,
        rotated_from=predecessor,
        family_id=(predecessor.family_id or predecessor.id) if predecessor else token_id,
        rotated_by=rotation.by if rotation else "",
        rotated_by_display=rotation.by_display if rotation else "",
        self_rotated=rotation.self_rotated if rotation else False,
        allowed_ips=allowed_ips,
        prefix=token_prefix(secret),
        digest=token_digest(secret),
    )
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def token_create(
    *, organization: Organization, name: str, scopes: Iterable[str],
    expires_in_days: int | None = None, created_by: User | None,
    grantor: Principal | None = None, allowed_ips: Iterable[str] = (),
) -> IssuedToken:  # fmt: skip
    """Create a token; `grantor` (the caller) cannot grant scopes it lacks.

    The organization's token policy bounds its lifetime and may require an allow-list.
    """
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("The name must have 1 to 100 characters.", field="name")
    _issuance_locked(organization.id)
    # Checked under the issuance lock: two requests with one name cannot both pass.
    _name_free_checked(organization, name)
    chosen = _checked_scopes(scopes, grantor)
    days = _checked_lifetime(
        organization,
        min(settings.TOKEN_DEFAULT_LIFETIME_DAYS, _max_lifetime(organization))
        if expires_in_days is None
        else expires_in_days,
    )
    networks = _checked_allowed_ips(organization, allowed_ips)
    issued = _issue(
        organization=organization, name=name, scopes=chosen, created_by=created_by,
        lifetime=timedelta(days=days), allowed_ips=networks,
    )  # fmt: skip
    _audit(issued.token, "token.created", scopes=chosen, expires_in_days=days,
           allowed_ips=networks)  # fmt: skip
    return issued


@transaction.atomic
def token_update(
    *, token: ServiceToken, name: str | None = None, scopes: Iterable[str] | None = None,
    allowed_ips: Iterable[str] | None = None,
) -> ServiceToken:  # fmt: skip
    """Rename a token, narrow its scopes (never widen them) or replace its allow-list."""
    changes: dict[str, Any] = {}
    if allowed_ips is not None:
        networks = _checked_allowed_ips(token.organization, allowed_ips)
        if networks != list(token.allowed_ips or ()):
            changes["allowed_ips"] = {"from": list(token.allowed_ips or ()), "to": networks}
            token.allowed_ips = networks
    if name is not None and name.strip() != token.name:
        if not 1 <= len(name.strip()) <= 100:
            raise InvalidInput("The name must have 1 to 100 characters.", field="name")
        _issuance_locked(token.organization_id)
        _name_free_checked(token.organization, name.strip(), family_id=token.family_id or token.id)
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
        token.save(update_fields=["name", "scopes", "allowed_ips"])
        token_changed(token)
        _audit(token, "token.updated", **changes)
    return token


@transaction.atomic
def token_revoke(*, token: ServiceToken, reason: str = "") -> bool:
    """Revoke a token now; False if it was already revoked."""
    token = (
        ServiceToken.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(id=token.id)
    )
    now = timezone.now()
    if token.revoked_at is not None and token.revoked_at <= now:
        return False
    token.revoked_at = now
    token.revoked_reason = (reason or "revoked")[:200]
    token.save(update_fields=["revoked_at", "revoked_reason"])
    token_changed(token)
    _audit(token, "token.revoked", reason=token.revoked_reason)
    return True


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
    lifetime = min(token.expires_at - token.created_at,
                   timedelta(days=_max_lifetime(token.organization)))  # fmt: skip
    try:
        with transaction.atomic():
            issued = _issue(
                organization=token.organization, name=token.name, scopes=list(token.scopes),
                created_by=token.created_by, lifetime=lifetime, allowed_ips=networks,
                rotation=rotation,
            )  # fmt: skip
    except IntegrityError:
        # Another request gave the token its successor meanwhile.
        raise RotationInProgress() from None
    token.revoked_at = now + timedelta(seconds=grace_seconds)
    token.revoked_reason = "rotated"
    token.save(update_fields=["revoked_at", "revoked_reason"])
    token_changed(token)
    _audit(token, "token.rotated", successor_id=str(issued.token.id),
           grace_until=token.revoked_at.isoformat(), by=rotation.by_display,
           self_rotated=rotation.self_rotated)  # fmt: skip
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
        details={"name": token.name, "prefix": token.prefix, "family_id": str(family),
                 "revoked": revoked, "reason": reason},
    )  # fmt: skip
    logger.warning("token_family_revoked", token_id=str(token.id), family_id=str(family),
                   revoked=len(revoked))  # fmt: skip
    return len(revoked)


@transaction.atomic
def token_policy_set(
    *, organization: Organization, max_lifetime_days: int | object | None = UNCHANGED,
    require_allowed_ips: bool | object = UNCHANGED,
) -> Organization:  # fmt: skip
    """Change the organization's token policy (None lifts the lifetime bound); audited.

    It applies to tokens created or rotated from now on.
    """
    organization = Organization.objects.select_for_update(no_key=True).get(id=organization.id)
    changes: dict[str, Any] = {}
    if max_lifetime_days is not UNCHANGED:
        if max_lifetime_days is not None and (
            not isinstance(max_lifetime_days, int)
            or not 1 <= max_lifetime_days <= settings.TOKEN_MAX_LIFETIME_DAYS
        ):
            raise InvalidInput(
                f"max_lifetime_days must be between 1 and {settings.TOKEN_MAX_LIFETIME_DAYS}, "
                "or null for no bound beyond the service's.",
                field="max_lifetime_days",
            )
        if max_lifetime_days != organization.token_max_lifetime_days:
            changes["max_lifetime_days"] = {"from": organization.token_max_lifetime_days,
                                            "to": max_lifetime_days}  # fmt: skip
            organization.token_max_lifetime_days = max_lifetime_days
    if require_allowed_ips is not UNCHANGED:
        if not isinstance(require_allowed_ips, bool):
            raise InvalidInput("require_allowed_ips must be true or false.",
                               field="require_allowed_ips")  # fmt: skip
        if require_allowed_ips != organization.require_allowed_ips:
            changes["require_allowed_ips"] = {"from": organization.require_allowed_ips,
                                              "to": require_allowed_ips}  # fmt: skip
            organization.require_allowed_ips = require_allowed_ips
    if changes:
        organization.save(update_fields=["token_max_lifetime_days", "require_allowed_ips"])
        audit_record(
            action="token.policy_changed",
            organization_id=organization.id,
            organization_display=organization.slug,
            resource_type="organization",
            resource_id=str(organization.id),
            details=changes,
        )
    return organization


def token_policy(organization: Organization) -> dict[str, Any]:
    """Return the organization's token policy as the API shows it."""
    return {
        "max_lifetime_days": organization.token_max_lifetime_days,
        "require_allowed_ips": organization.require_allowed_ips,
        "service_max_lifetime_days": settings.TOKEN_MAX_LIFETIME_DAYS,
    }


@transaction.atomic
def tokens_revoke_all(*, organization: Organization, reason: str) -> int:
    """Emergency: revoke every live token of the organization now; returns how many."""
    if not reason.strip():
        raise InvalidInput("Say why every token is being revoked.", field="reason")
    _issuance_locked(organization.id)
    now = timezone.now()
    live = (
        ServiceToken.objects.select_for_update(of=("self",))
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


@transaction.atomic
def tokens_revoke_of_creator(
    *, user: User, reason: str, organization: Organization | None = None
) -> int:
    """Revoke for good the live tokens `user` made (in `organization`, or in any); returns how many.

    A token acts with its creator's rights: once they leave, it must not come
    back to life if they are ever added again, so it is revoked, not just refused.
    """
    now = timezone.now()
    live = ServiceToken.objects.filter(created_by=user, expires_at__gt=now).exclude(
        revoked_at__lte=now
    )
    if organization is not None:
        live = live.filter(organization=organization)
    for organization_id in sorted({str(o) for o in live.values_list("organization_id", flat=True)}):
        _issuance_locked(organization_id)
    revoked = 0
    for token in live.select_for_update(of=("self",)).select_related("organization"):
        token.revoked_at, token.revoked_reason = now, reason[:200]
        token.save(update_fields=["revoked_at", "revoked_reason"])
        token_changed(token)
        _audit(token, "token.revoked", reason=token.revoked_reason, creator=user.username)
        revoked += 1
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
