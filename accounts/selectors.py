"""Reading identity data: always scoped to an organization where one applies."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.errors import PermissionDenied
from accounts.models import (
    Group,
    Invitation,
    Membership,
    Organization,
    RecoveryCode,
    ServiceToken,
    Session,
    TokenUsageDay,
    TotpFactor,
    User,
    WebAuthnCredential,
)
from config.errors import NotFound
from config.ids import Id

METHOD_TOTP = "totp"
METHOD_WEBAUTHN = "webauthn"
METHOD_RECOVERY_CODE = "recovery_code"


def organization_by_slug_or_id(*, value: str) -> Organization | None:
    """Return the organization with this slug, or this id."""
    org = Organization.objects.filter(slug=value).first()
    if org is not None:
        return org
    try:
        return Organization.objects.filter(id=uuid.UUID(value)).first()
    except ValueError:
        return None


def user_by_login(*, login: str) -> User | None:
    """Return the user whose username or email (any case) is `login`."""
    return User.objects.filter(Q(username=login) | Q(email__iexact=login)).first()


def membership_for(*, user_id: Id, organization_id: Id) -> Membership | None:
    """Return the user's membership in the organization, with the org and groups loaded."""
    return (
        Membership.objects.select_related("user", "organization")
        .prefetch_related("groups")
        .filter(user_id=user_id, organization_id=organization_id)
        .first()
    )


def default_membership(*, user: User) -> Membership | None:
    """Return the user's first membership in an active organization."""
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__is_active=True)
        .order_by("created_at", "organization__slug")
        .first()
    )


def member_list(*, organization_id: Id) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization_id=organization_id)
        .select_related("user")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("user__username")
    )


def group_list(*, organization_id: Id) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization_id=organization_id)
        .prefetch_related("members__user")
        .order_by("name")
    )


def session_list(*, user_id: Id | None) -> QuerySet[Session]:
    """The person's live sessions, newest activity first (a service token has none: 403)."""
    return (
        Session.objects.filter(user_id=person_required(user_id=user_id), revoked_at__isnull=True)
        .select_related("organization")
        .order_by("-last_activity")
    )


def session_live_get(*, user_id: Id | None, session_id: Id) -> Session:
    """Return one of the user's live sessions, or raise 404."""
    session = session_list(user_id=user_id).filter(id=session_id).first()
    if session is None:
        raise NotFound("You have no live session with that id.")
    return session


def user_memberships(*, user_id: Id | None) -> QuerySet[Membership]:
    """The person's memberships in active organizations, with the organization, by its name."""
    return (
        Membership.objects.filter(
            user_id=person_required(user_id=user_id), organization__is_active=True
        )
        .select_related("organization")
        .order_by("organization__name", "organization__slug")
    )


def token_usage_series(
    *, organization_id: Id, token_ids: Iterable[uuid.UUID], since: date, days: int
) -> dict[str, list[int]]:
    """Requests per day (UTC) of each of the organization's tokens, for `days` days from
    `since` (a day without a request counts 0), in one query."""
    wanted = list(token_ids)
    usage: dict[str, dict[date, int]] = {}
    rows = TokenUsageDay.objects.filter(
        token__organization_id=organization_id, token_id__in=wanted, date__gte=since
    ).values_list("token_id", "date", "requests")
    for token_id, day, requests in rows:
        usage.setdefault(str(token_id), {})[day] = requests
    return {
        token_id: [usage.get(token_id, {}).get(since + timedelta(days=n), 0) for n in range(days)]
        for token_id in map(str, wanted)
    }


def token_usage_totals(*, token_ids: Iterable[Id]) -> dict[str, dict[str, Any]]:
    """Each token's use count and last use (when and from where), by token id."""
    rows = ServiceToken.objects.filter(id__in=list(token_ids)).values(
        "id", "usage_count", "last_used_at", "last_used_ip"
    )
    return {str(row["id"]): dict(row) for row in rows}


def token_family_list(*, organization_id: Id, family_id: Id) -> QuerySet[ServiceToken]:
    """Every token of one rotation family of the organization, oldest first."""
    return (
        ServiceToken.objects.filter(organization_id=organization_id, family_id=family_id)
        .select_related("created_by")
        .order_by("created_at")
    )


# --- The person behind a credential ------------------------------------------------


def person_required(*, user_id: Id | None) -> Id:
    """Return the id of the person a principal is; a service token is refused, 403."""
    if user_id is None:
        raise PermissionDenied("Only people have sessions and a profile; use a user's token.")
    return user_id


def person_get(*, user_id: str | None) -> User:
    """Return the person a principal is (its `user_id`); a service token is refused, 403."""
    return User.objects.get(id=person_required(user_id=user_id))


def token_creator_get(*, user_id: Id | None, token_id: Id) -> User | None:
    """Return who a new token is created by: the person calling, or the calling token's creator."""
    if user_id:
        return User.objects.get(id=user_id)
    token = ServiceToken.objects.select_related("created_by").get(id=token_id)
    return token.created_by


def session_get(*, session_id: Id | None) -> Session | None:
    """Return a login session, live or ended, with its organization (None if there is none)."""
    if not session_id:
        return None
    return Session.objects.select_related("organization").filter(id=session_id).first()


def session_current_get(*, session_id: Id | None) -> Session:
    """Return the login session a credential is tied to, or raise 404."""
    session = session_get(session_id=session_id)
    if session is None:
        raise NotFound("This credential is not tied to a session.")
    return session


# --- One record of the caller's organization, or 404 ---------------------------------


def organization_get(*, organization_id: Id) -> Organization:
    """Return the organization a principal acts in."""
    return Organization.objects.get(id=organization_id)


def member_get(*, organization_id: Id, user_id: Id) -> Membership:
    """Return a member of the organization, or raise 404."""
    membership = member_list(organization_id=organization_id).filter(user_id=user_id)
    found = membership.select_related("organization").first()
    if found is None:
        raise NotFound("No member of this organization has that id.")
    return found


def group_get(*, organization_id: Id, group_id: Id) -> Group:
    """Return a group of the organization, or raise 404."""
    group = group_list(organization_id=organization_id).filter(id=group_id)
    found = group.select_related("organization").first()
    if found is None:
        raise NotFound("This organization has no group with that id.")
    return found


def token_list(*, organization_id: Id, with_rotations: bool = False) -> QuerySet[ServiceToken]:
    """Return the service tokens of the organization, newest first (`with_rotations`: with
    each one's predecessor and successors loaded)."""
    tokens = (
        ServiceToken.objects.filter(organization_id=organization_id)
        .select_related("created_by", "organization")
        .order_by("-created_at")
    )
    if with_rotations:
        tokens = tokens.select_related("rotated_from").prefetch_related("successors")
    return tokens


def token_presenting_get(*, token_id: Id) -> ServiceToken:
    """Return the service token presented by the caller, with its creator and organization."""
    return ServiceToken.objects.select_related("created_by", "organization").get(id=token_id)


def token_get(*, organization_id: Id, token_id: Id) -> ServiceToken:
    """Return a service token of the organization, or raise 404."""
    token = token_list(organization_id=organization_id).filter(id=token_id).first()
    if token is None:
        raise NotFound("This organization has no service token with that id.")
    return token


# --- Invitations: the inviting organization's, and a person's own ----------------------


def invitation_list(*, organization_id: Id, status: str | None = None) -> QuerySet[Invitation]:
    """The organization's invitations, newest first, optionally of one status."""
    invitations = (
        Invitation.objects.filter(organization_id=organization_id)
        .select_related("invited_by", "organization")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("-created_at", "id")
    )
    now = timezone.now()
    if status == Invitation.EXPIRED:
        return invitations.filter(state=Invitation.State.PENDING, expires_at__lte=now)
    if status == Invitation.State.PENDING:
        return invitations.filter(state=status, expires_at__gt=now)
    return invitations.filter(state=status) if status else invitations


def invitation_get(*, organization_id: Id, invitation_id: Id) -> Invitation:
    """Return an invitation of the organization, or raise 404."""
    found = invitation_list(organization_id=organization_id).filter(id=invitation_id)
    invitation = found.first()
    if invitation is None:
        raise NotFound("This organization has no invitation with that id.")
    return invitation


def invitations_received(*, user: User) -> QuerySet[Invitation]:
    """The open invitations addressed to the user's email address, newest first."""
    if not user.email:
        return Invitation.objects.none()
    return (
        Invitation.objects.filter(
            email=user.email.lower(),
            state=Invitation.State.PENDING,
            expires_at__gt=timezone.now(),
            organization__is_active=True,
        )
        .select_related("organization", "invited_by")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("-created_at", "id")
    )


def invitation_received_get(*, user: User, invitation_id: str) -> Invitation:
    """Return an open invitation addressed to the user, or raise 404."""
    invitation = invitations_received(user=user).filter(id=invitation_id).first()
    if invitation is None:
        raise NotFound("You have no open invitation with that id.")
    return invitation


def factor_methods(*, user_id: Any) -> list[str]:
    """Return the kinds of second factor the person can prove now."""
    methods = []
    if TotpFactor.objects.filter(user_id=user_id, confirmed_at__isnull=False).exists():
        methods.append(METHOD_TOTP)
    if WebAuthnCredential.objects.filter(user_id=user_id).exists():
        methods.append(METHOD_WEBAUTHN)
    if methods and RecoveryCode.objects.filter(user_id=user_id, used_at__isnull=True).exists():
        methods.append(METHOD_RECOVERY_CODE)
    return methods


def user_has_factor(*, user_id: Id) -> bool:
    """Tell whether the person has enrolled a second factor (an app or a passkey)."""
    return (
        TotpFactor.objects.filter(user_id=user_id, confirmed_at__isnull=False).exists()
        or WebAuthnCredential.objects.filter(user_id=user_id).exists()
    )


def factor_list(*, user_id: Any) -> list[dict[str, Any]]:
    """Return the person's enrolled factors (apps and passkeys), oldest first."""
    factors = [
        {
            "id": f.id,
            "kind": METHOD_TOTP,
            "name": f.name,
            "created_at": f.created_at,
            "last_used_at": f.last_used_at,
        }
        for f in TotpFactor.objects.filter(user_id=user_id, confirmed_at__isnull=False)
    ] + [
        {
            "id": c.id,
            "kind": METHOD_WEBAUTHN,
            "name": c.name,
            "created_at": c.created_at,
            "last_used_at": c.last_used_at,
        }
        for c in WebAuthnCredential.objects.filter(user_id=user_id)
    ]
    return sorted(factors, key=lambda factor: factor["created_at"])


def recovery_codes_remaining(*, user_id: Any) -> int:
    """Return how many of the person's recovery codes are still unused."""
    return RecoveryCode.objects.filter(user_id=user_id, used_at__isnull=True).count()


def member_factor_kinds(*, organization_id: Any) -> dict[str, list[str]]:
    """Return, per member's user id, the kinds of second factor they have enrolled."""
    members = Membership.objects.filter(organization_id=organization_id).values("user_id")
    kinds: dict[str, list[str]] = {}
    apps = TotpFactor.objects.filter(user_id__in=members, confirmed_at__isnull=False)
    for user_id in apps.values_list("user_id", flat=True).distinct():
        kinds.setdefault(str(user_id), []).append(METHOD_TOTP)
    passkeys = WebAuthnCredential.objects.filter(user_id__in=members)
    for user_id in passkeys.values_list("user_id", flat=True).distinct():
        kinds.setdefault(str(user_id), []).append(METHOD_WEBAUTHN)
    return kinds
