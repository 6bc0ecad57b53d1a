"""The decision point: the one place that answers "may this principal do P in org O"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from accounts.principal import Principal
from accounts.roles import PERMISSIONS, role_grants

logger = structlog.get_logger("vantage.authz")

# Declared by views that any authenticated principal of the organization may use.
ANY_PRINCIPAL = "any"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    groups: tuple[str, ...]
    reason: str
    source: str = "local"


def decision_check(*, principal: Principal, permission: str, organization_id: Any) -> Decision:
    """Return whether `principal` may do `permission` in the organization, and why."""
    groups = tuple(sorted(principal.groups))
    if str(organization_id) != principal.organization_id:
        return Decision(False, (), "not a member of this organization")
    if permission == ANY_PRINCIPAL:
        return Decision(True, groups, "any member")
    if permission not in PERMISSIONS and permission not in principal.permissions:
        return Decision(False, groups, f"unknown permission {permission}")
    if permission not in principal.permissions:
        who = f"role {principal.role}" if principal.role else "the token's scopes"
        return Decision(False, groups, f"{who} does not grant {permission}")
    if principal.kind == "user" and principal.role and role_grants(principal.role, permission):
        return Decision(True, groups, f"granted by role {principal.role}")
    granting = [name for name in groups if permission in principal.groups[name]]
    if granting:
        return Decision(True, groups, f"granted by group {granting[0]}")
    return Decision(True, groups, "granted by the token's scopes")
