"""The decision point: the one place that answers "may this principal do P in org O"."""

from __future__ import annotations

import logging
import time

import structlog
from django.conf import settings

from accounts import metrics
from accounts.authz.decision_cache import Decision, decision_ttl
from accounts.authz.remote import remote_decision
from accounts.identity.authentication import principal_refreshed
from accounts.identity.principal import Principal
from accounts.roles import PERMISSIONS, role_grants
from config.ids import Id

__all__ = ["ANY_PRINCIPAL", "Decision", "decision_check"]

logger = structlog.get_logger("vantage.authz")
# Counters bound to their labels once: labelling on the hot path costs a lock.
_DECISIONS = {
    (source, outcome): metrics.AUTHZ_DECISIONS.labels(source=source, outcome=outcome)
    for source in ("l1", "cache", "db", "remote")
    for outcome in ("allowed", "denied")
}

# Declared by views that any authenticated principal of the organization may use.
ANY_PRINCIPAL = "any"


def decision_check(
    *, principal: Principal, permission: str, organization_id: Id, backend: str | None = None
) -> Decision:
    """Return whether `principal` may do `permission` in the organization, and why.

    The one place any code asks; every decision is logged and counted.
    `backend` is `local` or `remote`; AUTHZ_BACKEND by default.
    """
    started = time.perf_counter()
    decision = _decide(
        principal, permission, str(organization_id), backend or settings.AUTHZ_BACKEND
    )
    duration = time.perf_counter() - started
    outcome = "allowed" if decision.allowed else "denied"
    _DECISIONS[decision.source, outcome].inc()
    metrics.PERMISSION_CACHE_RESULTS[decision.source].inc()
    metrics.AUTHZ_DECISION_SECONDS.observe(duration)
    # Hits are routine (debug); misses and denials are worth reading.
    routine = decision.allowed and decision.source in ("l1", "cache")
    if routine and not logger.is_enabled_for(logging.DEBUG):
        return decision
    (logger.debug if routine else logger.info)(
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


def _decide(principal: Principal, permission: str, organization_id: str, backend: str) -> Decision:
    if organization_id != principal.organization_id:
        return Decision(False, (), "not a member of this organization", principal.source)
    if permission == ANY_PRINCIPAL:
        return Decision(True, tuple(sorted(principal.groups)), "any member", principal.source)
    if backend == "remote":
        return remote_decision(
            principal=principal, permission=permission, organization_id=organization_id
        )
    decision = _rule(principal, permission)
    # What the principal may do was read from the database `age` seconds ago:
    # past its permission class's TTL, read it again, even though no change
    # was signalled (a lost invalidation cannot outlive the TTL).
    age = time.time() - principal.loaded_at
    if principal.source != "db" and age > decision_ttl(permission, allowed=decision.allowed):
        decision = _rule(principal_refreshed(principal), permission)
    return decision


def _rule(principal: Principal, permission: str) -> Decision:
    groups, source = tuple(sorted(principal.groups)), principal.source
    if principal.kind == "user" and principal.role is None:
        return Decision(False, (), "not an active member of this organization", source)
    if permission not in PERMISSIONS and permission not in principal.permissions:
        return Decision(False, groups, f"unknown permission {permission}", source)
    if permission not in principal.permissions:
        who = f"role {principal.role}" if principal.role else "the token's scopes"
        return Decision(False, groups, f"{who} does not grant {permission}", source)
    if principal.kind == "user" and principal.role and role_grants(principal.role, permission):
        return Decision(True, groups, f"granted by role {principal.role}", source)
    granting = [name for name in groups if permission in principal.groups[name]]
    if granting:
        return Decision(True, groups, f"granted by group {granting[0]}", source)
    return Decision(True, groups, "granted by the token's scopes", source)
