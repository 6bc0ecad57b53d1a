"""DRF authentication: JWT for programs, the Django session for the dashboard.

Both resolve the caller to a `Principal` bound to one organization, with the
session's revocation checked on every request and, once the cache is warm,
no database query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
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
    TokenExpired,
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
from accounts.roles import scope_held
from accounts.services.sessions import session_revoke
from accounts.services.token_rotations import token_rotation_reuse
from accounts.tokens.format import token_digest, token_well_formed
from accounts.tokens.ip_allow_lists import ip_allowed
from accounts.tokens.records import (
    TokenRecord,
    record_key,
    token_owners,
    token_record_cache,
    token_record_load,
)
from accounts.tokens.usage import token_use_count, token_use_increment
from audit.services import audit_denial
from config.request_context import Actor, bind_principal, current_client

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
        + ([generation_key(organization_id), member_key(organization_id, user_id)]
           if organization_id and user_id else [])
    )  # fmt: skip
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
    principal = principal_from_view(
        view, session_id=session_id, source=source, generation=generation
    )
    return replace(
        principal,
        mfa_verified_at=state.get("mfa_verified_at"),
        mfa_enrolment_required=bool(state.get("mfa_enrolment_required")),
    )


def user_from_principal(principal: Principal) -> User:
    """Return a read-only User for request.user, built without a query."""
    user = User(id=principal.user_id, username=principal.display, is_active=True)
    user._state.adding = False
    user._state.db = "default"
    return user


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
                session_id=str(claims["sid"]), user_id=user_id, organization_id=org_id,
                read=counter.read,
            )  # fmt: skip
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


def _audit_refused_token(record: TokenRecord, reason: str) -> None:
    # Once a minute per token: a client retrying a dead token cannot flood the log.
    audit_denial(
        once_per=f"token-refused:{record['id']}",
        action="token.used_after_revocation",
        organization_id=record["organization_id"],
        actor=Actor("service_token", record["id"], record["name"]),
        resource_type="service_token",
        resource_id=record["id"],
        details={"reason": reason, "prefix": record["prefix"]},
    )


def _ip_denied(principal: Principal, ip: str | None) -> None:
    metrics.AUTH_FAILURES.labels(code=IpNotAllowed.code).inc()
    logger.warning("token_ip_denied", token_id=principal.id, ip=ip)
    # Once a minute per token: a leaked token tried from elsewhere cannot flood the log.
    audit_denial(
        once_per=f"token-ip-denied:{principal.id}",
        action="token.ip_denied",
        organization_id=principal.organization_id,
        organization_display=principal.organization_slug,
        actor=principal.actor,
        resource_type="service_token",
        resource_id=principal.id,
        details={"ip": ip, "prefix": principal.token_prefix,
                 "allowed_ips": list(principal.allowed_ips)},
    )  # fmt: skip


def _refuse_if_dead(record: TokenRecord) -> None:
    """Raise the 401 for a revoked or expired token (audited at most once a minute)."""
    now = time.time()
    if record["revoked_at"] is not None and record["revoked_at"] <= now:
        _audit_refused_token(record, "revoked")
        if record.get("rotated"):
            raise RotatedTokenPresented(token_id=record["id"], revoked_at=record["revoked_at"])
        raise TokenRevoked("The service token has been revoked.")
    if record["expires_at"] <= now:
        _audit_refused_token(record, "expired")
        raise TokenExpired("The service token has expired.")


def principal_for_token(raw: str, counter: RequestCounter | None = None) -> Principal:
    """Resolve a service token to its principal, or raise a 401 domain error.

    A malformed token (shape or checksum) is refused before any lookup. A
    request's `counter` counts the request and the token's use in the same trip.
    """
    if not token_well_formed(raw):
        raise AuthenticationFailed("The service token is malformed (bad shape or checksum).")
    invalidations_catch_up()
    digest = token_digest(raw)
    # A token's organization and creator never change: once known, the member
    # view is fetched in the same round trip as the token's record.
    owner = token_owners.get(digest)
    keys = [record_key(digest)]
    if owner is not None:
        keys += [generation_key(owner[0]), member_key(owner[0], owner[1])]
        if counter is not None:
            counter.plan(kind="service_token", principal_id=owner[2], organization_id=owner[0],
                         user_id=owner[1])  # fmt: skip
            counter.increments.append(token_use_increment(owner[2]))
    cached = counter.read(keys) if counter is not None else cache_get_many(keys)
    record = cached.get(record_key(digest)) if cached is not None else None
    if record is None:
        record = token_record_load(raw, digest)
        if record is None:
            raise AuthenticationFailed("Unknown service token.")
        if cached is not None:
            token_record_cache(digest, record)
    _refuse_if_dead(record)
    org_id, creator_id = record["organization_id"], record["created_by_id"]
    if creator_id is None:
        raise AuthenticationFailed("The token's creator no longer exists; create a new token.")
    if owner != (org_id, creator_id, record["id"]):
        token_owners.put(digest, (org_id, creator_id, record["id"]))
        cached = cache_get_many([generation_key(org_id), member_key(org_id, creator_id)])
    view, source, generation = member_view(
        organization_id=org_id, user_id=creator_id, cached=cached
    )
    if view["status"] == "org_inactive":
        raise AuthenticationFailed("The organization is deactivated.")
    if view["status"] != "ok":
        raise AuthenticationFailed(
            "The token's creator is no longer an active member; create a new token."
        )
    # The creator's principal, narrowed to the token's scopes and named for the token.
    creator = principal_from_view(view, source=source, generation=generation)
    return token_principal(creator, record)


def token_principal(creator: Principal, record: TokenRecord) -> Principal:
    """Return a token's principal: its creator's, narrowed to its scopes and named for it."""
    scopes = frozenset(record["scopes"])
    return replace(
        creator,
        kind="service_token",
        id=record["id"],
        display=record["name"],
        role=None,
        groups={},
        permissions=effective_scopes(scopes, creator.permissions),
        user_id=None,
        token_prefix=record["prefix"],
        delegated_by=creator.id,
        scopes=scopes,
        allowed_ips=tuple(record.get("allowed_ips") or ()),
        token_family=record.get("family_id") or record["id"],
        email="",
        name="",
    )


def principal_refreshed(principal: Principal) -> Principal:
    """Return the principal with what it may do read again from the database (and re-cached)."""
    user_id = principal.user_id or principal.delegated_by
    view, source, _ = member_view_reload(
        organization_id=principal.organization_id, user_id=user_id, generation=principal.generation
    )
    if view["status"] != "ok":
        # No longer a member: nothing is granted (the next request is refused outright).
        return replace(principal, role=None, groups={}, permissions=frozenset(), source=source)
    fresh = principal_from_view(
        view, session_id=principal.session_id, source=source, generation=principal.generation
    )
    if principal.kind == "user":
        return replace(
            fresh,
            mfa_verified_at=principal.mfa_verified_at,
            mfa_enrolment_required=principal.mfa_enrolment_required,
        )
    return replace(
        principal, permissions=effective_scopes(principal.scopes or (), fresh.permissions),
        source=source, loaded_at=fresh.loaded_at,
    )  # fmt: skip


def effective_scopes(scopes: Iterable[str], creator_permissions: frozenset[str]) -> frozenset[str]:
    """Return what a token may do: its scopes that its creator may still do."""
    return frozenset(scope for scope in scopes if scope_held(scope, creator_permissions))


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
            _ip_denied(principal, ip)
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
