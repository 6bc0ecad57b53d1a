"""Organizations, their members, roles and groups; every change audited and effective at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.errors import LastAdmin
from accounts.identity.principal import organization_changed
from accounts.models import Group, Membership, Organization, Role, User
from accounts.ratelimits.tiers import LIMIT_FIELDS
from accounts.roles import PERMISSIONS
from accounts.services.sessions import session_revoke, sessions_revoke_all
from accounts.services.tokens import tokens_revoke_of_creator
from accounts.tokens.documents import member_document
from audit.services import audit_record
from config.errors import Conflict, InvalidInput
from config.ids import Id
from webhooks.services.events import webhook_event_emit

ORGANIZATION_NAME_MAX = 200
# Why a token was revoked when its creator left: shown in the token list.
CREATOR_REMOVED = "creator removed from the organization"
CREATOR_DEACTIVATED = "creator's account deactivated"


def _audit(
    org: Organization, action: str, resource_type: str, resource_id: object, **details: Any
) -> None:
    audit_record(
        action=action,
        organization_id=org.id,
        organization_display=org.slug,
        resource_type=resource_type,
        resource_id=str(resource_id),
        details=details,
    )


@transaction.atomic
def organization_create(
    *, name: str, slug: str, tier: str = Organization.Tier.FREE
) -> Organization:
    if tier not in Organization.Tier.values:
        raise InvalidInput(
            f"Unknown tier {tier!r}; use one of {', '.join(Organization.Tier.values)}."
        )
    if not name.strip() or len(name) > ORGANIZATION_NAME_MAX:
        raise InvalidInput("The name must have 1 to 200 characters.", field="name")
    if Organization.objects.filter(slug=slug).exists():
        raise Conflict(f"An organization with slug {slug!r} exists already.")
    org = Organization.objects.create(name=name, slug=slug, tier=tier)
    _audit(org, "org.created", "organization", org.id, name=name, slug=slug, tier=tier)
    return org


# The largest override of each limit: beyond these a number is surely a typo.
LIMIT_CEILINGS = {
    "requests_per_minute": 1_000_000,
    "uploads_per_day": 100_000_000,
    "max_file_size_bytes": 1_000_000_000,
}


@transaction.atomic
def organization_limits_set(
    *, organization: Organization, reset: bool = False, **overrides: int | None
) -> Organization:
    """Override some of the tier's limits for one organization; `reset` returns to the tier's."""
    unknown = set(overrides) - set(LIMIT_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown limit {sorted(unknown)[0]!r}.", field=sorted(unknown)[0])
    before = {name: getattr(organization, name) for name in LIMIT_FIELDS}
    changes: dict[str, int | None] = dict.fromkeys(LIMIT_FIELDS) if reset else {}
    for name, value in overrides.items():
        if value is None:
            continue
        if not 1 <= value <= LIMIT_CEILINGS[name]:
            raise InvalidInput(f"{name} must lie between 1 and {LIMIT_CEILINGS[name]}.", field=name)
        changes[name] = value
    for name, value in changes.items():
        setattr(organization, name, value)
    organization.save(update_fields=[*changes])
    after = {name: getattr(organization, name) for name in LIMIT_FIELDS}
    if after != before:
        organization_changed(organization.id)
        _audit(
            organization,
            "org.limits_changed",
            "organization",
            organization.id,
            before=before,
            after=after,
        )
    return organization


@transaction.atomic
def user_create(
    *, username: str, email: str, password: str, name: str = "", validate: bool = True
) -> User:
    """Create a user with an Argon2id-hashed password (validated by Django's validators)."""
    try:
        User.username_validator(username)
        validate_email(email)
    except ValidationError as exc:
        field = "email" if "email" in " ".join(exc.messages).lower() else "username"
        raise InvalidInput(" ".join(exc.messages), field=field) from exc
    if User.objects.filter(username=username).exists():
        raise Conflict(f"A user named {username!r} exists already.")
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(f"A user with email {email!r} exists already.")
    user = User(username=username, email=email, name=name)
    if validate:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.save()
    audit_record(
        action="user.created",
        resource_type="user",
        resource_id=str(user.id),
        details={"username": username},
    )
    return user


def _validated_groups(org: Organization, names: Iterable[str]) -> list[Group]:
    wanted = sorted(set(names))
    groups = list(Group.objects.filter(organization=org, name__in=wanted))
    missing = sorted(set(wanted) - {g.name for g in groups})
    if missing:
        raise InvalidInput(
            f"No group named {', '.join(missing)} in this organization.", field="groups"
        )
    return groups


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise InvalidInput(
            f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role"
        )


@transaction.atomic
def member_add(
    *, organization: Organization, user: User, role: str, groups: Iterable[str] = ()
) -> Membership:
    _check_role(role)
    chosen = _validated_groups(organization, groups)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, organization=organization, role=role)
    except IntegrityError as exc:
        raise Conflict(f"{user.username} is a member of {organization.slug} already.") from exc
    membership.groups.set(chosen)
    organization_changed(organization.id)
    _audit(
        organization,
        "org.member_added",
        "user",
        user.id,
        username=user.username,
        role=role,
        groups=[g.name for g in chosen],
    )
    return membership


def _other_admins(membership: Membership) -> bool:
    """Tell whether another active admin would remain; locks the org's admin rows first.

    Locking all of them, always in id order, keeps two admins demoting each
    other at once from both succeeding (or deadlocking).
    """
    admins = list(
        Membership.objects.select_for_update(of=("self",))
        .filter(organization_id=membership.organization_id, role=Role.ADMIN)
        .order_by("id")
        .values_list("id", "user__is_active")
    )
    return any(admin_id != membership.id and active for admin_id, active in admins)


@transaction.atomic
def member_update(
    *, membership: Membership, role: str | None = None, groups: Iterable[str] | None = None
) -> Membership:
    """Change a member's role and/or groups; the last admin cannot be demoted."""
    org = membership.organization
    changes: dict[str, Any] = {}
    if role is not None and role != membership.role:
        _check_role(role)
        if membership.role == Role.ADMIN and not _other_admins(membership):
            raise LastAdmin()
        changes["role"] = {"from": membership.role, "to": role}
        membership.role = role
        membership.save(update_fields=["role"])
    if groups is not None:
        chosen = _validated_groups(org, groups)
        before = sorted(membership.groups.values_list("name", flat=True))
        after = sorted(g.name for g in chosen)
        if before != after:
            membership.groups.set(chosen)
            changes["groups"] = {"from": before, "to": after}
    if changes:
        organization_changed(org.id)
        action = "org.member_role_changed" if "role" in changes else "org.group_changed"
        _audit(
            org, action, "user", membership.user_id, username=membership.user.username, **changes
        )
    if "role" in changes:
        webhook_event_emit(
            organization_id=org.id,
            type="member.role_changed",
            data={**member_document(membership), "previous_role": changes["role"]["from"]},
        )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    """Remove a member, end their sessions and revoke their tokens here; never the last admin."""
    org = membership.organization
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise LastAdmin()
    user = membership.user
    for session in user.login_sessions.filter(organization=org, revoked_at__isnull=True):
        session_revoke(session=session, reason="member_removed")
    tokens = tokens_revoke_of_creator(user=user, organization=org, reason=CREATOR_REMOVED)
    removed = member_document(membership)
    membership.delete()
    webhook_event_emit(organization_id=org.id, type="member.removed", data=removed)
    organization_changed(org.id)
    revoked = {"tokens_revoked": tokens} if tokens else {}
    _audit(org, "org.member_removed", "user", user.id, username=user.username, **revoked)


def _check_permissions(permissions: Iterable[str]) -> list[str]:
    chosen = sorted(set(permissions))
    unknown = [p for p in chosen if p not in PERMISSIONS]
    if unknown:
        raise InvalidInput(f"Unknown permission {', '.join(unknown)}.", field="permissions")
    return chosen


def _group_members(org: Organization, user_ids: Iterable[Any]) -> list[Membership]:
    wanted = {str(u) for u in user_ids}
    members = list(Membership.objects.filter(organization=org, user_id__in=wanted))
    missing = wanted - {str(m.user_id) for m in members}
    if missing:
        raise InvalidInput(
            "Only members of this organization can join its groups.", field="members"
        )
    return members


@transaction.atomic
def group_create(
    *,
    organization: Organization,
    name: str,
    permissions: Iterable[str],
    members: Iterable[Any] = (),
) -> Group:
    chosen = _check_permissions(permissions)
    if Group.objects.filter(organization=organization, name=name).exists():
        raise Conflict(f"A group named {name!r} exists already.")
    group = Group.objects.create(organization=organization, name=name, permissions=chosen)
    group.members.set(_group_members(organization, members))
    organization_changed(organization.id)
    _audit(
        organization,
        "org.group_changed",
        "group",
        group.id,
        change="created",
        name=name,
        permissions=chosen,
    )
    return group


@transaction.atomic
def group_update(
    *,
    group: Group,
    name: str | None = None,
    permissions: Iterable[str] | None = None,
    members: Iterable[Any] | None = None,
) -> Group:
    org = group.organization
    changes: dict[str, Any] = {}
    if name is not None and name != group.name:
        if Group.objects.filter(organization=org, name=name).exclude(id=group.id).exists():
            raise Conflict(f"A group named {name!r} exists already.")
        changes["name"] = {"from": group.name, "to": name}
        group.name = name
    if permissions is not None:
        chosen = _check_permissions(permissions)
        if chosen != sorted(group.permissions):
            changes["permissions"] = {"from": sorted(group.permissions), "to": chosen}
            group.permissions = chosen
    group.save()
    if members is not None:
        chosen_members = _group_members(org, members)
        before = sorted(str(m.user_id) for m in group.members.all())
        after = sorted(str(m.user_id) for m in chosen_members)
        if before != after:
            group.members.set(chosen_members)
            changes["members"] = {"from": before, "to": after}
    if changes:
        organization_changed(org.id)
        _audit(org, "org.group_changed", "group", group.id, change="updated", **changes)
    return group


@transaction.atomic
def group_delete(*, group: Group) -> None:
    org = group.organization
    _audit(org, "org.group_changed", "group", group.id, change="deleted", name=group.name)
    group.delete()
    organization_changed(org.id)


@transaction.atomic
def user_deactivate(*, user: User) -> None:
    """Disable an account: its sessions end and its tokens are revoked now; no sign-in again."""
    User.objects.filter(id=user.id).update(is_active=False)
    sessions_revoke_all(user=user, reason="user_deactivated")
    tokens_revoke_of_creator(user=user, reason=CREATOR_DEACTIVATED)
    for org_id in user.memberships.values_list("organization_id", flat=True):
        organization_changed(org_id)
    audit_record(
        action="user.deactivated",
        resource_type="user",
        resource_id=str(user.id),
        details={"username": user.username},
    )


@transaction.atomic
def password_change(*, user: User, password: str, keep_session_id: Id | None = None) -> int:
    """Set a new password (validated) and end every other session; returns how many ended."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.save(update_fields=["password"])
    ended = sessions_revoke_all(
        user=user, reason="password_changed", keep_session_id=keep_session_id
    )
    audit_record(
        action="user.password_changed",
        resource_type="user",
        resource_id=str(user.id),
        details={"sessions_ended": ended},
    )
    return ended
