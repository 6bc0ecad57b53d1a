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
}
PERMISSIONS: tuple[str, ...] = tuple(PERMISSION_MIN_ROLE)

# Scopes only a service token carries, never a role or a group, each with the
# permission it stands for: a token keeps such a scope only while its creator
# holds that permission, and only a holder of it may grant the scope.
TOKEN_ONLY_SCOPES: dict[str, str] = {"token:self_rotate": "token:manage"}
SCOPES: tuple[str, ...] = (*PERMISSIONS, *TOKEN_ONLY_SCOPES)


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
