"""The DRF permission class that enforces each view's `required_permission`."""

from __future__ import annotations

from typing import Any

import structlog
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.authz.decision_point import decision_check
from accounts.authz.step_up import enrolment_check, step_up_check
from accounts.errors import PermissionDenied
from accounts.identity.principal import Principal
from audit.services import audit_denial

logger = structlog.get_logger("vantage.authz")

# One `authz.denied` event per principal and permission in this many seconds,
# so a client retrying a refused call cannot flood the audit log.
DENIAL_AUDIT_INTERVAL = 60


def request_principal(request: Request) -> Principal | None:
    return request.auth if isinstance(request.auth, Principal) else None


def principal_required(request: Request) -> Principal:
    """Return the request's principal (views behind RequiredPermission always have one)."""
    principal = request_principal(request)
    if principal is None:
        raise NotAuthenticated()
    return principal


def permission_denial_audit(principal: Principal, permission: str, reason: str, path: str) -> None:
    """Record that the principal was refused `permission`, at most once an interval."""
    audit_denial(
        once_per=f"authz-denied:{principal.organization_id}:{principal.id}:{permission}",
        interval=DENIAL_AUDIT_INTERVAL,
        action="authz.denied",
        organization_id=principal.organization_id,
        organization_display=principal.organization_slug,
        actor=principal.actor,
        resource_type="permission",
        resource_id=permission,
        details={"reason": reason, "path": path},
    )


class RequiredPermission(BasePermission):
    """Allow a request only if its principal holds the view's `required_permission`.

    A view without `required_permission` is refused: deny by default. A session
    that must enrol a second factor first may only use views marked
    `mfa_enrolment_allowed`; a view marked `step_up` also needs a recent
    second-factor check from a person who has a factor.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request_principal(request)
        if principal is None:
            return False  # DRF answers 401 when nobody authenticated
        if not hasattr(view, (request.method or "GET").lower()):
            return True  # DRF answers 405 for a method the view does not offer
        permission = getattr(view, "required_permission", None)
        if not permission:
            logger.error("view_without_required_permission", view=type(view).__name__)
            return False
        enrolment_check(principal, allowed=getattr(view, "mfa_enrolment_allowed", False))
        decision = decision_check(
            principal=principal, permission=permission, organization_id=principal.organization_id
        )
        if not decision.allowed:
            permission_denial_audit(principal, permission, decision.reason, request.path)
            raise PermissionDenied(f"Permission denied: {permission}")
        if getattr(view, "step_up", False):
            step_up_check(principal)
        return True
