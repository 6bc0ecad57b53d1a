"""Reading identity data: always scoped to an organization where one applies."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Group, Membership, Organization, Session, User


def organization_by_slug_or_id(value: str) -> Organization | None:
    """Return the organization with this slug, or this id."""
    org = Organization.objects.filter(slug=value).first()
    if org is not None:
        return org
    try:
        return Organization.objects.filter(id=uuid.UUID(value)).first()
    except ValueError:
        return None


def user_by_login(login: str) -> User | None:
    """Return the user whose username or email (any case) is `login`."""
    return User.objects.filter(Q(username=login) | Q(email__iexact=login)).first()


def membership_for(*, user_id: Any, organization_id: Any) -> Membership | None:
    """Return the user's membership in the organization, with the org and groups loaded."""
    return (
        Membership.objects.select_related("user", "organization")
        .prefetch_related("groups")
        .filter(user_id=user_id, organization_id=organization_id)
        .first()
    )


def default_membership(user: User) -> Membership | None:
    """Return the user's first membership in an active organization."""
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__is_active=True)
        .order_by("created_at", "organization__slug")
        .first()
    )


def member_list(*, organization_id: Any) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization_id=organization_id)
        .select_related("user")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("user__username")
    )


def group_list(*, organization_id: Any) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization_id=organization_id)
        .prefetch_related("members__user")
        .order_by("name")
    )


def session_list(*, user_id: Any) -> QuerySet[Session]:
    """The user's live sessions, newest activity first."""
    return (
        Session.objects.filter(user_id=user_id, revoked_at__isnull=True)
        .select_related("organization")
        .order_by("-last_activity")
    )
