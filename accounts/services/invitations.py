"""Invitations to join an organization: made by its admins, decided by the invited person.

Existing users are never added to an organization without their consent, and
nothing an inviting admin sees depends on whether an account exists for the
address: the answer, the audit event and the mail are the same either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Invitation, Membership, Organization, User
from accounts.services.organizations import _check_role, _validated_groups, member_add
from audit.services import audit_record
from config.errors import Conflict, InvalidInput

logger = structlog.get_logger("vantage.invitations")

EMAIL_MAX_LENGTH = 254


def _audit(invitation: Invitation, action: str, **details: Any) -> None:
    org = invitation.organization
    audit_record(
        action=action,
        organization_id=org.id,
        organization_display=org.slug,
        resource_type="invitation",
        resource_id=str(invitation.id),
        details={"email": invitation.email, **details},
    )


def _normalized_email(email: str) -> str:
    address = email.strip().lower()
    if len(address) > EMAIL_MAX_LENGTH:
        raise InvalidInput("An email address has at most 254 characters.", field="email")
    try:
        validate_email(address)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="email") from exc
    return address


@transaction.atomic
def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    groups: Iterable[str] = (),
    invited_by: User | None = None,
) -> Invitation:
    """Invite an address with a role and groups; inviting a pending address again renews it."""
    address = _normalized_email(email)
    _check_role(role)
    chosen = _validated_groups(organization, groups)
    if Membership.objects.filter(organization=organization, user__email__iexact=address).exists():
        raise Conflict(f"{address} is a member of {organization.slug} already.")
    now = timezone.now()
    expires_at = now + timedelta(days=settings.INVITATION_EXPIRY_DAYS)
    invitation = (
        Invitation.objects.select_for_update()
        .filter(organization=organization, email=address, state=Invitation.State.PENDING)
        .first()
    )
    action = "org.invitation_renewed" if invitation else "org.invitation_created"
    if invitation is None:
        invitation = Invitation(organization=organization, email=address)
    invitation.role, invitation.invited_by, invitation.expires_at = role, invited_by, expires_at
    invitation.created_at = now
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError as exc:  # the same address invited by two requests at once
        raise Conflict(f"{address} was invited by another request just now.") from exc
    invitation.groups.set(chosen)
    _audit(
        invitation,
        action,
        role=role,
        groups=[g.name for g in chosen],
        expires_at=expires_at.isoformat(),
    )
    transaction.on_commit(lambda: _mail_invitation(invitation), robust=True)
    return invitation


def _mail_invitation(invitation: Invitation) -> None:
    """Tell the address about the invitation (the same mail whether or not it has an account)."""
    org = invitation.organization
    inviter = invitation.invited_by.get_full_name() if invitation.invited_by else "An admin"
    link = f"{settings.DASHBOARD_URL.rstrip('/')}/invitations/"
    send_mail(
        subject=f"[Vantage] You are invited to join {org.name}",
        message=(
            f"{inviter} invited {invitation.email} to join the organization {org.name} on "
            f"Vantage as {invitation.role}. Sign in with the account of this address at "
            f"{link} to accept or decline before {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            "If you have no account with this address, ask whoever invited you to have one "
            "made; if you did not expect this mail, ignore it."
        ),
        from_email=None,
        recipient_list=[invitation.email],
        fail_silently=False,
    )
    logger.info("invitation_mailed", invitation_id=str(invitation.id))


def _locked(invitation: Invitation) -> Invitation:
    return (
        Invitation.objects.select_for_update().select_related("organization").get(id=invitation.id)
    )


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """Withdraw a pending invitation: it can no longer be accepted."""
    locked = _locked(invitation)
    status = locked.status_at(timezone.now())
    if status != Invitation.State.PENDING:
        raise Conflict(f"The invitation is {status} already; only a pending one can be revoked.")
    locked.state, locked.responded_at = Invitation.State.REVOKED, timezone.now()
    locked.save(update_fields=["state", "responded_at"])
    _audit(locked, "org.invitation_revoked")
    return locked


def _open_for(invitation: Invitation, user: User) -> Invitation:
    """Lock the invitation and make sure `user` may still answer it."""
    locked = _locked(invitation)
    if not user.email or locked.email != user.email.lower():
        # Callers look invitations up by the user's address; this guards a changed address.
        raise Conflict("This invitation is addressed to another email address.")
    status = locked.status_at(timezone.now())
    if status != Invitation.State.PENDING:
        raise Conflict(f"The invitation is {status}; it can no longer be answered.")
    return locked


def _respond(invitation: Invitation, user: User, state: str) -> None:
    invitation.state, invitation.responded_at = state, timezone.now()
    invitation.responded_by = user
    invitation.save(update_fields=["state", "responded_at", "responded_by"])


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the inviting organization with the invitation's role and groups."""
    locked = _open_for(invitation, user)
    groups = [group.name for group in locked.groups.all()]
    membership = member_add(
        organization=locked.organization, user=user, role=locked.role, groups=groups
    )
    _respond(locked, user, Invitation.State.ACCEPTED)
    _audit(
        locked,
        "org.invitation_accepted",
        user_id=str(user.id),
        username=user.username,
        role=locked.role,
        groups=groups,
    )
    return membership


@transaction.atomic
def invitation_decline(*, invitation: Invitation, user: User) -> Invitation:
    """Refuse an invitation; the organization sees that it was declined."""
    locked = _open_for(invitation, user)
    _respond(locked, user, Invitation.State.DECLINED)
    _audit(locked, "org.invitation_declined")
    return locked
