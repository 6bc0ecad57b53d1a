"""Sign-in, token refresh with reuse detection, organization switch and session revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts import metrics
from accounts.errors import (
    AuthenticationFailed,
    MfaChallengeInvalid,
    MfaCodeInvalid,
    MfaRequired,
    TokenRevoked,
    TooManyLoginAttempts,
)
from accounts.identity.devices import device_label
from accounts.identity.jwt_tokens import refresh_claims, token_pair_issue
from accounts.identity.lockout import (
    login_attempt_release,
    login_attempt_reserve,
    login_failures_clear,
)
from accounts.identity.principal import session_changed, session_revoked
from accounts.models import Membership, MfaChallenge, MfaPolicy, Role, Session, User
from accounts.selectors import (
    default_membership,
    factor_methods,
    membership_for,
    organization_by_slug_or_id,
    user_by_login,
    user_has_factor,
)
from accounts.services.second_factors import (
    FactorProof,
    challenge_live,
    challenge_open,
    factor_check,
)
from audit.models import AuditEvent
from audit.services import audit_record
from config.errors import NotFound
from config.ids import Id
from config.request_context import Actor, current_client

logger = structlog.get_logger("vantage.auth")

INVALID_CREDENTIALS = "Invalid username or password."


@dataclass(frozen=True)
class SignIn:
    session: Session
    membership: Membership
    tokens: dict[str, Any]


def _user_actor(user: User) -> Actor:
    return Actor("user", str(user.id), user.username)


def _audit_session(
    action: str,
    session: Session,
    *,
    details: dict[str, Any],
    outcome: str = AuditEvent.Outcome.SUCCESS,
    by_user: bool = True,
) -> None:
    """Record an event about a session in its organization's chain.

    The actor is the session's user, or (by_user=False) whoever acts now.
    """
    audit_record(
        action=action,
        outcome=outcome,
        organization_id=session.organization_id,
        organization_display=session.organization.slug,
        actor=_user_actor(session.user) if by_user else None,
        resource_type="session",
        resource_id=str(session.id),
        details=details,
    )


def _resolve_membership(user: User, org: str | None) -> Membership | None:
    if not org:
        return default_membership(user=user)
    organization = organization_by_slug_or_id(value=org)
    if organization is None or not organization.is_active:
        return None
    return membership_for(user_id=user.id, organization_id=organization.id)


def auth_login(
    *, login: str, password: str, org: str | None = None, kind: str = Session.Kind.API
) -> SignIn:
    """Check the credentials and open a session bound to one organization.

    Raises TooManyLoginAttempts while locked out and AuthenticationFailed
    (the same answer for an unknown user and a wrong password) otherwise.
    """
    client = current_client()
    try:
        attempt = login_attempt_reserve(username=login, ip=client.ip)
    except TooManyLoginAttempts:
        metrics.LOGINS.labels(outcome="locked").inc()
        logger.warning("login_locked_out", login=login)
        raise
    user = authenticate(None, username=login, password=password)
    if user is None:
        _login_failed(login=login, reason="bad_credentials")
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    login_attempt_release(attempt)
    membership = _resolve_membership(user, org)
    if membership is None:
        _login_failed(login=login, reason="no_membership", user=user)
        raise AuthenticationFailed(
            "You are not a member of that organization."
            if org
            else "Your account belongs to no active organization."
        )
    methods = factor_methods(user_id=user.id)
    if methods:
        # The password alone opens nothing: the sign-in waits for a second factor.
        challenge = challenge_open(user=user, org=org, session_kind=kind)
        raise MfaRequired(
            challenge=str(challenge.id),
            methods=methods,
            expires_in=settings.MFA_CHALLENGE_SECONDS,
        )
    return _login_succeeded(user=user, membership=membership, kind=kind)


def mfa_required_of(membership: Membership) -> bool:
    """Tell whether the member's organization requires them to use a second factor."""
    policy = membership.organization.mfa_policy
    return policy == MfaPolicy.EVERYONE or (
        policy == MfaPolicy.ADMINS and membership.role == Role.ADMIN
    )


def _challenge_attempt(challenge_id: Id) -> MfaChallenge:
    """Count an answer to the challenge (committed whatever the answer), or raise if dead."""
    with transaction.atomic():
        challenge = challenge_live(challenge_id=challenge_id, for_update=True)
        challenge.attempts += 1
        challenge.save(update_fields=["attempts"])
    return challenge


def auth_login_mfa(*, challenge_id: Id, proof: FactorProof) -> SignIn:
    """Finish a sign-in with its second factor: open the session the password started.

    Raises MfaChallengeInvalid for an unknown, expired, spent or exhausted
    challenge, MfaCodeInvalid for a wrong proof (counted towards the lockout)
    and TooManyLoginAttempts while locked out.
    """
    challenge = _challenge_attempt(challenge_id)
    user = challenge.user
    membership = _resolve_membership(user, challenge.org or None)
    if membership is None:
        raise MfaChallengeInvalid("You are no longer a member of that organization.")
    method = factor_check(
        user=user,
        proof=proof,
        organization=membership.organization,
        webauthn_challenge=challenge.webauthn_challenge,
        purpose="sign_in",
    )
    if method is None:
        raise MfaCodeInvalid()
    # Single use: of two right answers at once, one signs in.
    deleted, _ = MfaChallenge.objects.filter(id=challenge.id).delete()
    if not deleted:
        raise MfaChallengeInvalid()
    return _login_succeeded(
        user=user, membership=membership, kind=challenge.session_kind, mfa_method=method
    )


def password_confirm(*, user: User, password: str) -> bool:
    """Tell whether a signed-in user's current password is right, as sign-in would.

    A wrong one counts towards the sign-in lockout and is audited, so a stolen
    session cannot be used to guess the password; while locked out this raises
    TooManyLoginAttempts.
    """
    attempt = login_attempt_reserve(username=user.username, ip=current_client().ip)
    if user.check_password(password):
        login_attempt_release(attempt)
        return True
    _login_failed(login=user.username, reason="wrong_current_password", user=user)
    return False


@transaction.atomic
def _login_failed(*, login: str, reason: str, user: User | None = None) -> None:
    """Audit a refused sign-in; a wrong password was counted already when it was attempted."""
    known = user or user_by_login(login=login)
    membership = default_membership(user=known) if known else None
    metrics.LOGINS.labels(outcome="failure").inc()
    audit_record(
        action="auth.login_failed",
        outcome=AuditEvent.Outcome.FAILURE,
        organization_id=membership.organization_id if membership else None,
        organization_display=membership.organization.slug if membership else "",
        actor=_user_actor(known) if known else Actor("anonymous", "", login[:255]),
        resource_type="user",
        resource_id=str(known.id) if known else "",
        details={"login": login[:254], "reason": reason},
    )


@transaction.atomic
def _login_succeeded(
    *, user: User, membership: Membership, kind: str, mfa_method: str | None = None
) -> SignIn:
    client = current_client()
    session = Session(
        user=user,
        organization=membership.organization,
        kind=kind,
        ip=client.ip,
        user_agent=client.user_agent,
        device=device_label(client.user_agent),
        mfa_verified_at=timezone.now() if mfa_method else None,
        # Required to use a factor but without one: this session may only enrol one.
        mfa_enrolment_required=mfa_method is None
        and mfa_required_of(membership)
        and not user_has_factor(user_id=user.id),
    )
    tokens = token_pair_issue(session=session, membership=membership)
    session.refresh_jti = tokens["refresh_jti"]
    session.save(force_insert=True)
    login_failures_clear(username=user.username)
    if user.email:
        login_failures_clear(username=user.email)
    User.objects.filter(id=user.id).update(last_login=timezone.now())
    metrics.LOGINS.labels(outcome="success").inc()
    details: dict[str, Any] = {"kind": kind, "device": session.device, "mfa": mfa_method or "none"}
    if session.mfa_enrolment_required:
        details["mfa_enrolment_required"] = True
    _audit_session("auth.login", session, details=details)
    return SignIn(session=session, membership=membership, tokens=tokens)


def auth_refresh(*, refresh: str) -> SignIn:
    """Spend a refresh token for a new pair; a spent one presented again ends the session."""
    claims = refresh_claims(refresh)
    result = _refresh(claims)
    if result is None:
        raise TokenRevoked("The refresh token was already used or its session has ended.")
    return result


@transaction.atomic
def _refresh(claims: dict[str, Any]) -> SignIn | None:
    session = (
        Session.objects.select_for_update(of=("self",))
        .select_related("user", "organization")
        .filter(id=claims["sid"], user_id=claims["sub"])
        .first()
    )
    if session is None or session.revoked_at is not None:
        return None
    now = timezone.now()
    if session.last_activity < now - timedelta(days=settings.AUTH_SESSION_IDLE_DAYS):
        session_revoke(session=session, reason="idle")
        return None
    jti = str(claims["jti"])
    window = timedelta(seconds=settings.AUTH_REFRESH_REUSE_WINDOW_SECONDS)
    tolerated = (
        window.total_seconds() > 0
        and jti == session.previous_refresh_jti
        and session.refreshed_at is not None
        and now - session.refreshed_at <= window
    )
    if jti != session.refresh_jti and not tolerated:
        _audit_session(
            "auth.refresh_reuse_detected",
            session,
            outcome=AuditEvent.Outcome.DENIED,
            details={"refresh_count": session.refresh_count},
        )
        session_revoke(session=session, reason="refresh_token_reuse")
        return None
    membership = membership_for(user_id=session.user_id, organization_id=session.organization_id)
    if membership is None or not session.user.is_active or not session.organization.is_active:
        session_revoke(session=session, reason="access_removed")
        return None
    tokens = token_pair_issue(session=session, membership=membership)
    session.previous_refresh_jti = session.refresh_jti
    session.refresh_jti = tokens["refresh_jti"]
    session.refreshed_at = now
    session.last_activity = now
    session.refresh_count += 1
    session.save(
        update_fields=[
            "previous_refresh_jti",
            "refresh_jti",
            "refreshed_at",
            "last_activity",
            "refresh_count",
        ]
    )
    _audit_session(
        "auth.token_refreshed", session, details={"refresh_count": session.refresh_count}
    )
    return SignIn(session=session, membership=membership, tokens=tokens)


@transaction.atomic
def org_switch(*, session: Session, org: str) -> SignIn:
    """Move the session to another organization of the user, with a new token pair.

    Tokens issued for the previous organization stop working at once.
    """
    session = (
        Session.objects.select_for_update(of=("self",)).select_related("user").get(id=session.id)
    )
    membership = _resolve_membership(session.user, org)
    if membership is None:
        raise NotFound("No organization of yours has that slug or id.")
    previous = session.organization_id
    session.organization = membership.organization
    # The organization moved to may require a second factor that the person has yet to enrol.
    session.mfa_enrolment_required = mfa_required_of(membership) and not user_has_factor(
        user_id=session.user_id
    )
    tokens = token_pair_issue(session=session, membership=membership)
    session.previous_refresh_jti = ""
    session.refresh_jti = tokens["refresh_jti"]
    session.refreshed_at = timezone.now()
    session.save(
        update_fields=[
            "organization",
            "mfa_enrolment_required",
            "previous_refresh_jti",
            "refresh_jti",
            "refreshed_at",
        ]
    )
    session_changed(session)
    _audit_session("auth.org_switched", session, details={"from_organization_id": str(previous)})
    return SignIn(session=session, membership=membership, tokens=tokens)


@transaction.atomic
def session_browser_key_set(*, session_id: Id, key: str) -> None:
    """Tie a login session to the browser's Django session key (which a sign-in or a new
    password hash has just replaced), so that ending one ends the other."""
    Session.objects.filter(id=session_id).update(django_session_key=key)


def session_revoke(*, session: Session, reason: str) -> bool:
    """End a session (its tokens or its browser cookie); False if it had already ended."""
    updated = Session.objects.filter(id=session.id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason[:64]
    )
    if not updated:
        return False
    session_revoked(session.id)
    if session.django_session_key:
        engine: type[SessionBase] = import_string(settings.SESSION_ENGINE + ".SessionStore")
        engine(session.django_session_key).delete()
    _audit_session(
        "auth.logout" if reason == "logout" else "auth.session_revoked",
        session,
        by_user=False,
        details={"reason": reason, "kind": session.kind, "user_id": str(session.user_id)},
    )
    return True


@transaction.atomic
def sessions_revoke_all(*, user: User, reason: str, keep_session_id: Id | None = None) -> int:
    """End every live session of the user but `keep_session_id`; returns how many ended."""
    sessions = Session.objects.select_related("organization").filter(
        user=user, revoked_at__isnull=True
    )
    if keep_session_id:
        sessions = sessions.exclude(id=keep_session_id)
    return sum(session_revoke(session=session, reason=reason) for session in sessions)
