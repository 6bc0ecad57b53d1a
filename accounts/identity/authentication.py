"""DRF authentication: JWT and service tokens for programs, the Django session for the dashboard.

Each resolves the caller to a `Principal` bound to one organization, with the
session's revocation checked on every request and, once the cache is warm,
no database query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from rest_framework import authentication
from rest_framework.request import Request

from accounts import metrics
from accounts.caching.invalidations import cache_get_many, invalidations_catch_up
from accounts.errors import (
    AuthenticationFailed,
    IpNotAllowed,
    RotatedTokenPresented,
    TokenRevoked,
)
from accounts.identity.jwt_tokens import access_claims
from accounts.identity.principal import (
    Principal,
    generation_key,
    member_key,
    member_view,
    member_view_reload,
    principal_from_view,
    session_activity_touch,
    session_key,
    session_state_cache,
    session_state_load,
)
from accounts.models import Session, User
from accounts.ratelimits.throttling import RequestCounter
from accounts.services.sessions import session_revoke
from accounts.services.token_rotations import token_rotation_reuse
from accounts.tokens.ip_allow_lists import ip_allowed
from accounts.tokens.principal import effective_scopes, principal_for_token, token_ip_denied
from accounts.tokens.usage import token_use_count
from config.request_context import bind_principal, current_client

logger = structlog.get_logger("vantage.auth")


BROWSER_SESSION_KEY = "vantage_session_id"

CacheRead = Callable[[list[str]], dict[str, Any] | None]


def _revoke_idle(session_id: str) -> None:
    session = Session.objects.select_related("organization").filter(id=session_id).first()
    if session is not None:
        session_revoke(session=session, reason="idle")


def principal_for_session(
    *,
    session_id: str,
    user_id: str | None,
    organization_id: str | None,
    read: CacheRead = cache_get_many,
) -> Principal:
    """Resolve a live session to its principal, or raise a 401 domain error.

    `user_id` and `organization_id` are what the credential claims (None for
    a browser session, which takes them from the session itself). `read`
    reads the cache (a request's counter may count the request in the same trip).
    """
    invalidations_catch_up()
    cached = read(
        [session_key(session_id)]
        + (
            [generation_key(organization_id), member_key(organization_id, user_id)]
            if organization_id and user_id
            else []
        )
    )
    state = cached.get(session_key(session_id)) if cached is not None else None
    if state is None:
        state = session_state_load(session_id)
        if state is None:
            raise AuthenticationFailed("The session does not exist.")
        if cached is not None:
            session_state_cache(session_id, state)
    if state.get("revoked"):
        raise TokenRevoked()
    if (user_id and state["user_id"] != user_id) or (
        organization_id and state["organization_id"] != organization_id
    ):
        raise TokenRevoked("The token belongs to an earlier state of this session.")
    idle = timedelta(days=settings.AUTH_SESSION_IDLE_DAYS).total_seconds()
    if time.time() - state["last_activity"] > idle:
        _revoke_idle(session_id)
        raise TokenRevoked("The session ended after a long inactivity; sign in again.")
    org_id, uid = state["organization_id"], state["user_id"]
    if not organization_id:  # a browser session: read the member view now
        cached = cache_get_many([generation_key(org_id), member_key(org_id, uid)])
    view, source, generation = member_view(organization_id=org_id, user_id=uid, cached=cached)
    if view["status"] == "user_inactive":
        raise AuthenticationFailed("The account is disabled.")
    if view["status"] == "org_inactive":
        raise AuthenticationFailed("The organization is deactivated.")
    if view["status"] != "ok":
        raise TokenRevoked("You are no longer a member of this organization.")
    session_activity_touch(session_id, state)
    return principal_from_view(
        view,
        session_id=session_id,
        source=source,
        generation=generation,
        mfa_verified_at=state.get("mfa_verified_at"),
        mfa_enrolment_required=bool(state.get("mfa_enrolment_required")),
    )


def user_from_principal(principal: Principal) -> User:
    """Return request.user, built without a query: its other fields load if asked for."""
    known = {"id": principal.user_id, "username": principal.display, "is_active": True}
    # from_db takes the values in the model's field order.
    return User.from_db("default", _USER_FIELDS, [known[name] for name in _USER_FIELDS])


_USER_FIELDS = [
    field.attname
    for field in User._meta.concrete_fields
    if field.attname in ("id", "username", "is_active")
]


def _bind(principal: Principal) -> None:
    bind_principal(principal.actor, org=principal.organization_id)


class JWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <access token>` (service tokens `sk_...` are left to their class)."""

    www_authenticate_realm = "api"

    def authenticate_header(self, request: Request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'

    def authenticate(self, request: Request) -> tuple[User, Principal] | None:
        scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw or raw.startswith("sk_"):
            return None
        counter = RequestCounter(request)
        try:
            claims = access_claims(raw)
            user_id, org_id = str(claims["sub"]), str(claims["org_id"])
            counter.plan(kind="user", principal_id=user_id, organization_id=org_id, user_id=user_id)
            principal = principal_for_session(
                session_id=str(claims["sid"]),
                user_id=user_id,
                organization_id=org_id,
                read=counter.read,
            )
        except AuthenticationFailed as exc:
            metrics.AUTH_FAILURES.labels(code=exc.code).inc()
            counter.settle(None)
            raise
        counter.settle(principal)
        _bind(principal)
        return user_from_principal(principal), principal


def _presented_service_token(request: Request) -> str | None:
    """Return the `sk_` token of `Authorization: Bearer` or `X-API-Key`, if one is presented."""
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and raw.strip().startswith("sk_"):
        return raw.strip()
    api_key = request.META.get("HTTP_X_API_KEY", "").strip()
    return api_key or None


def principal_refreshed(principal: Principal) -> Principal:
    """Return the principal with what it may do read again from the database (and re-cached)."""
    view, source, _ = member_view_reload(
        organization_id=principal.organization_id,
        user_id=principal.person_id,
        generation=principal.generation,
    )
    if view["status"] != "ok":
        # No longer a member: nothing is granted (the next request is refused outright).
        return replace(principal, role=None, groups={}, permissions=frozenset(), source=source)
    if principal.kind == "user":
        return principal_from_view(
            view,
            session_id=principal.session_id,
            source=source,
            generation=principal.generation,
            mfa_verified_at=principal.mfa_verified_at,
            mfa_enrolment_required=principal.mfa_enrolment_required,
        )
    fresh = principal_from_view(view, source=source, generation=principal.generation)
    return replace(
        principal,
        permissions=effective_scopes(principal.scopes or (), fresh.permissions),
        source=source,
        loaded_at=fresh.loaded_at,
    )


class ServiceTokenUser(AnonymousUser):
    """request.user for a service token: authenticated, but no person."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.username = f"token:{principal.display}"  # type: ignore[assignment]

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer sk_...` or `X-API-Key: sk_...`, checked before any lookup."""

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    def authenticate(self, request: Request) -> tuple[ServiceTokenUser, Principal] | None:
        raw = _presented_service_token(request)
        if raw is None:
            return None
        counter = RequestCounter(request)
        try:
            principal = principal_for_token(raw, counter)
        except AuthenticationFailed as exc:
            metrics.AUTH_FAILURES.labels(code=exc.code).inc()
            counter.increments_undo()
            counter.settle(None)
            rotating = request.path == reverse("token-self-rotate")
            if isinstance(exc, RotatedTokenPresented) and rotating:
                # Even past its grace, an old token presented to rotate again betrays a copy.
                token_rotation_reuse(token_id=exc.token_id, revoked_at=exc.revoked_at)
            raise
        ip = current_client().ip
        if not ip_allowed(principal.allowed_ips, ip):
            # Refused before any permission check; counted by address, not as the token's use.
            counter.increments_undo()
            counter.settle(None)
            token_ip_denied(principal, ip)
            raise IpNotAllowed(ip)
        counter.settle(principal)
        token_use_count(principal.id, ip, counted=counter.incremented)
        _bind(principal)
        return ServiceTokenUser(principal), principal


class SessionAuthentication(authentication.SessionAuthentication):
    """The dashboard's Django session (CSRF enforced on unsafe methods), tied to a login Session."""

    def authenticate(self, request: Request) -> tuple[User, Principal] | None:
        # BrowserSessionMiddleware has resolved the session (or signed a
        # revoked one out); only a browser with a live login Session passes.
        principal = getattr(request._request, "principal", None)
        if principal is None:
            return None
        result = super().authenticate(request)
        if result is None or principal.user_id != str(result[0].pk):
            return None
        RequestCounter(request).settle(principal)
        return result[0], principal
