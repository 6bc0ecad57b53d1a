"""Service tokens: create, narrow and revoke them; all audited.

Rotation, the token policy and expiry notices have modules of their own
(`token_rotations`, `token_policies`, `token_expiry`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.errors import TokenNameTaken
from accounts.identity.principal import Principal
from accounts.models import Organization, ServiceToken, User
from accounts.roles import SCOPES, scope_held
from accounts.tokens.documents import token_document
from accounts.tokens.format import token_digest, token_generate, token_prefix
from accounts.tokens.ip_allow_lists import allowed_ips_clean
from accounts.tokens.records import token_changed
from audit.services import audit_record
from config.errors import InvalidInput
from config.ids import Id
from webhooks.services.events import webhook_event_emit

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


def _issuance_locked(organization_id: Id) -> None:
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
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    created_by: User | None,
    lifetime: timedelta,
    allowed_ips: list[str],
    rotation: Rotation | None = None,
) -> IssuedToken:
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
    *,
    organization: Organization,
    name: str,
    scopes: Iterable[str],
    expires_in_days: int | None = None,
    created_by: User | None,
    grantor: Principal | None = None,
    allowed_ips: Iterable[str] = (),
) -> IssuedToken:
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
        organization=organization,
        name=name,
        scopes=chosen,
        created_by=created_by,
        lifetime=timedelta(days=days),
        allowed_ips=networks,
    )
    _audit(issued.token, "token.created", scopes=chosen, expires_in_days=days, allowed_ips=networks)
    return issued


@transaction.atomic
def token_update(
    *,
    token: ServiceToken,
    name: str | None = None,
    scopes: Iterable[str] | None = None,
    allowed_ips: Iterable[str] | None = None,
) -> ServiceToken:
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
    webhook_event_emit(
        organization_id=token.organization_id, type="token.revoked", data=token_document(token)
    )
    return True


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
    revoked_ids = []
    for token in live:
        token.revoked_at, token.revoked_reason = now, f"emergency: {reason}"[:200]
        token.save(update_fields=["revoked_at", "revoked_reason"])
        token_changed(token)
        revoked_ids.append(str(token.id))
    revoked = len(revoked_ids)
    audit_record(
        action="token.emergency_revoke",
        organization_id=organization.id,
        organization_display=organization.slug,
        resource_type="organization",
        resource_id=str(organization.id),
        details={"reason": reason, "revoked": revoked},
    )
    webhook_event_emit(
        organization_id=organization.id,
        type="tokens.revoked_all",
        data={"reason": reason, "revoked": revoked, "token_ids": revoked_ids},
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
