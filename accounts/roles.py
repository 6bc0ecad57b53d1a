"""The permission model: roles in a hierarchy, the permission table, and what a role grants."""

from __future__ import annotations

import functools

from accounts.models import Role

ROLE_LEVEL: dict[str, int] = {Role.GUEST: 0, Role.VIEWER: 1, Role.USER: 2, Role.ADMIN: 3}

# The least role that holds each permission; higher roles inherit it.
PERMISSION_MIN_ROLE: dict[str, str] = {
    "image:read": Role.VIEWER,
    "image:upload": Role.USER,
    "image:delete": Role.USER,
    "image:admin": Role.ADMIN,
    # Reading the member list (names and email addresses): not for guests, and a
    # service token only when granted this scope by name.
    "member:read": Role.VIEWER,
    "token:manage": Role.ADMIN,
    "audit:read": Role.ADMIN,
    "org:admin": Role.ADMIN,
    "metrics:read": Role.ADMIN,
    "authz:check": Role.ADMIN,
    "webhook:manage": Role.ADMIN,
}
PERMISSIONS: tuple[str, ...] = tuple(PERMISSION_MIN_ROLE)

# Scopes only a service token carries, never a role or a group, each with the
# permission it stands for: a token keeps such a scope only while its creator
# holds that permission, and only a holder of it may grant the scope.
TOKEN_ONLY_SCOPES: dict[str, str] = {"token:self_rotate": "token:manage"}
SCOPES: tuple[str, ...] = (*PERMISSIONS, *TOKEN_ONLY_SCOPES)


# What each permission (and token scope) allows, in one line, where people choose them.
PERMISSION_DESCRIPTIONS: dict[str, str] = {
    "image:read": "See the organization's images, their labels and jobs, and download them.",
    "image:upload": "Upload images and classify them.",
    "image:delete": "Delete images.",
    "image:admin": "Manage the organization's images beyond a member's own use.",
    "member:read": "List the members with their names and email addresses.",
    "token:manage": "Create, rotate and revoke service tokens.",
    "audit:read": "Read and export the audit log.",
    "org:admin": "Manage members, their roles, groups and invitations.",
    "metrics:read": "Read the metrics and the classifier providers' health.",
    "authz:check": "Ask the decision point whether someone may do something.",
    "webhook:manage": "Register webhook endpoints, rotate their secrets and read their deliveries.",
    "token:self_rotate": "Let the token rotate itself (a token only).",
}


def scope_held(scope: str, permissions: frozenset[str]) -> bool:
    """Tell whether someone holding `permissions` holds (or may grant) `scope`."""
    return scope in permissions or TOKEN_ONLY_SCOPES.get(scope, "") in permissions


def role_grants(role: str, permission: str) -> bool:
    """Tell whether `role` holds `permission` through the hierarchy."""
    needed = PERMISSION_MIN_ROLE.get(permission)
    return needed is not None and ROLE_LEVEL.get(role, -1) >= ROLE_LEVEL[needed]


@functools.cache
def role_permissions(role: str) -> frozenset[str]:
    """Return every permission `role` holds."""
    return frozenset(p for p in PERMISSIONS if role_grants(role, p))


def role_at_least(role: str, other: str) -> bool:
    return ROLE_LEVEL.get(role, -1) >= ROLE_LEVEL.get(other, 99)
