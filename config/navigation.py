"""The dashboard's navigation: the pages a signed-in principal is offered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.authz.pages import page_principal
from accounts.identity.principal import Principal
from accounts.selectors import user_memberships


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    # The permission a principal needs to be offered the page; None: every member.
    permission: str | None = None


NAVIGATION = (
    NavItem("/", "Home"),
    NavItem("/upload/", "Upload", "image:upload"),
    NavItem("/images/", "Gallery", "image:read"),
    NavItem("/classify/", "Classify", "image:upload"),
    NavItem("/tokens/", "Tokens", "token:manage"),
    NavItem("/members/", "Members", "org:admin"),
    NavItem("/audit/", "Audit", "audit:read"),
    NavItem("/providers/", "Providers", "metrics:read"),
    NavItem("/webhooks/", "Webhooks", "webhook:manage"),
    NavItem("/invitations/", "Invitations"),
    NavItem("/sessions/", "Sessions"),
    NavItem("/account/security/", "Security"),
    NavItem("/account/", "Account"),
)


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: the pages the signed-in principal is offered, and the current one."""
    principal = page_principal(request)
    if principal is None:
        return {}
    allowed = principal.permissions
    items = [item for item in NAVIGATION if item.permission is None or item.permission in allowed]
    return {
        "principal": principal,
        "nav_items": items,
        "nav_current": request.path,
        # The organizations the switcher offers, read once the template asks for them.
        "nav_memberships": SimpleLazyObject(lambda: _memberships(principal)),
    }


def _memberships(principal: Principal) -> list[Any]:
    if principal.user_id is None:
        return []
    return list(user_memberships(user_id=principal.user_id))
