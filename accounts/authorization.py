"""The decision point: the one place that answers "may this principal do P in org O"."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from accounts import metrics
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
    # Where the principal's permissions were read: l1 (this process),
    # cache (shared), db, or remote (another deployment's decision point).
    source: str = "db"


def decision_check(*, principal: Principal, permission: str, organization_id: Any) -> Decision:
    """Return whether `principal` may do `permission` in the organization, and why.

    The one place any code asks; every decision is logged and counted.
    """
    started = time.perf_counter()
    allowed, groups, reason = _decide(principal, permission, organization_id)
    decision = Decision(allowed, groups, reason, source=principal.source)
    duration = time.perf_counter() - started
    outcome = "allowed" if decision.allowed else "denied"
    metrics.AUTHZ_DECISIONS.labels(source=decision.source, outcome=outcome).inc()
    metrics.AUTHZ_DECISION_SECONDS.observe(duration)
    # Hits are routine; misses and denials are worth reading.
    log = logger.debug if decision.allowed and decision.source != "db" else logger.info
    log(
        "authorization_decision",
        organization_id=str(organization_id),
        principal=str(principal.actor),
        permission=permission,
        allowed=decision.allowed,
        source=decision.source,
        reason=decision.reason,
        duration_ms=round(duration * 1000, 3),
    )
    return decision


def _decide(
    principal: Principal, permission: str, organization_id: Any
) -> tuple[bool, tuple[str, ...], str]:
    groups = tuple(sorted(principal.groups))
    if str(organization_id) != principal.organization_id:
        return (False, (), "not a member of this organization")
    if permission == ANY_PRINCIPAL:
        return (True, groups, "any member")
    if permission not in PERMISSIONS and permission not in principal.permissions:
        return (False, groups, f"unknown permission {permission}")
    if permission not in principal.permissions:
        who = f"role {principal.role}" if principal.role else "the token's scopes"
        return (False, groups, f"{who} does not grant {permission}")
    if principal.kind == "user" and principal.role and role_grants(principal.role, permission):
        return (True, groups, f"granted by role {principal.role}")
    granting = [name for name in groups if permission in principal.groups[name]]
    if granting:
        return (True, groups, f"granted by group {granting[0]}")
    return (True, groups, "granted by the token's scopes")
