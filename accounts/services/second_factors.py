"""Proving a second factor: sign-in challenges, and checking a code, recovery code or passkey.

Every check counts towards the sign-in lockout like a password would (a wrong
one stays counted), so a stolen password cannot be used to guess codes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone

from accounts import metrics
from accounts.errors import MfaChallengeInvalid, MfaCodeInvalid
from accounts.identity.lockout import login_attempt_release, login_attempt_reserve
from accounts.identity.passkeys import (
    PasskeyRefused,
    assertion_credential_id,
    assertion_verify,
    authentication_options,
)
from accounts.identity.principal import session_changed
from accounts.identity.second_factors import (
    recovery_code_digests,
    totp_code_step,
    totp_secret_open,
)
from accounts.models import (
    MfaChallenge,
    Organization,
    RecoveryCode,
    Session,
    TotpFactor,
    User,
    WebAuthnCredential,
)
from accounts.selectors import METHOD_RECOVERY_CODE, METHOD_TOTP, METHOD_WEBAUTHN
from audit.models import AuditEvent
from audit.services import audit_record
from config.ids import Id
from config.request_context import Actor, current_client

logger = structlog.get_logger("vantage.auth")


@dataclass(frozen=True)
class FactorProof:
    """What a person presents as a second factor: one of a code, a recovery code, a passkey."""

    code: str = ""
    recovery_code: str = ""
    webauthn: dict[str, Any] | None = None


def mfa_audit(
    action: str,
    *,
    user: User,
    organization: Organization | None,
    details: dict[str, Any],
    outcome: str = AuditEvent.Outcome.SUCCESS,
    actor: Actor | None = None,
) -> None:
    """Record an event about a person's second factors in the organization's chain."""
    audit_record(
        action=action,
        outcome=outcome,
        organization_id=organization.id if organization else None,
        organization_display=organization.slug if organization else "",
        actor=actor or Actor("user", str(user.id), user.username),
        resource_type="user",
        resource_id=str(user.id),
        details=details,
    )


# --- Sign-in challenges -------------------------------------------------------------


def challenge_open(*, user: User, org: str | None, session_kind: str) -> MfaChallenge:
    """Start a sign-in that waits for a second factor; expired challenges are swept."""
    now = timezone.now()
    MfaChallenge.objects.filter(expires_at__lt=now).delete()
    return MfaChallenge.objects.create(
        user=user,
        org=(org or "")[:64],
        session_kind=session_kind,
        expires_at=now + timedelta(seconds=settings.MFA_CHALLENGE_SECONDS),
    )


def challenge_live(*, challenge_id: Id, for_update: bool = False) -> MfaChallenge:
    """Return a live challenge (not expired, attempts left), or raise MfaChallengeInvalid."""
    try:
        key = uuid.UUID(str(challenge_id))
    except ValueError as exc:
        raise MfaChallengeInvalid() from exc
    rows = MfaChallenge.objects.select_related("user")
    if for_update:
        rows = rows.select_for_update(of=("self",))
    challenge = rows.filter(id=key).first()
    if challenge is None or challenge.expires_at <= timezone.now():
        raise MfaChallengeInvalid()
    if challenge.attempts >= settings.MFA_CHALLENGE_ATTEMPTS or not challenge.user.is_active:
        raise MfaChallengeInvalid()
    return challenge


@transaction.atomic
def challenge_passkey_options(*, challenge_id: Id) -> dict[str, Any]:
    """Return WebAuthn assertion options for the challenge's person; remember their challenge."""
    challenge = challenge_live(challenge_id=challenge_id, for_update=True)
    options, webauthn_challenge = passkey_options(user_id=challenge.user_id)
    challenge.webauthn_challenge = webauthn_challenge
    challenge.save(update_fields=["webauthn_challenge"])
    return options


def passkey_options(*, user_id: Id) -> tuple[dict[str, Any], str]:
    """Return assertion options naming the person's passkeys, and their challenge."""
    allowed = [
        (credential_id, list(transports))
        for credential_id, transports in WebAuthnCredential.objects.filter(
            user_id=user_id
        ).values_list("credential_id", "transports")
    ]
    return authentication_options(allowed=allowed)


# --- Checking a proof ------------------------------------------------------------------


def _totp_accepted(user: User, code: str) -> bool:
    for factor in TotpFactor.objects.filter(user=user, confirmed_at__isnull=False):
        secret = totp_secret_open(factor.secret)
        if secret is None:
            logger.error("totp_secret_unreadable", factor_id=str(factor.id))
            continue
        step = totp_code_step(secret, code, after_step=factor.last_step)
        # Conditional: two requests with the same code at once, only one is accepted.
        if step is not None and TotpFactor.objects.filter(id=factor.id, last_step__lt=step).update(
            last_step=step, last_used_at=timezone.now()
        ):
            return True
    return False


def _recovery_code_accepted(user: User, code: str) -> bool:
    digests = recovery_code_digests(code, user_id=str(user.id))
    return bool(
        RecoveryCode.objects.filter(user=user, digest__in=digests, used_at__isnull=True).update(
            used_at=timezone.now()
        )
    )


def _passkey_accepted(user: User, assertion: dict[str, Any], webauthn_challenge: str) -> bool:
    if not webauthn_challenge:
        return False
    try:
        credential_id = assertion_credential_id(assertion)
        credential = WebAuthnCredential.objects.filter(
            user=user, credential_id=credential_id
        ).first()
        if credential is None:
            return False
        sign_count = assertion_verify(
            assertion=assertion,
            challenge=webauthn_challenge,
            public_key=bytes(credential.public_key),
            sign_count=credential.sign_count,
        )
    except PasskeyRefused as exc:
        logger.info("passkey_refused", user_id=str(user.id), reason=str(exc)[:200])
        return False
    WebAuthnCredential.objects.filter(id=credential.id).update(
        sign_count=sign_count, last_used_at=timezone.now()
    )
    return True


def _proof_method(proof: FactorProof) -> str:
    if proof.webauthn is not None:
        return METHOD_WEBAUTHN
    return METHOD_RECOVERY_CODE if proof.recovery_code else METHOD_TOTP


def factor_check(
    *,
    user: User,
    proof: FactorProof,
    organization: Organization | None,
    webauthn_challenge: str = "",
    purpose: str,
) -> str | None:
    """Return the method proven, or None (audited, counted towards the lockout).

    Raises TooManyLoginAttempts while the person is locked out: nothing is checked then.
    """
    attempt = login_attempt_reserve(username=user.username, ip=current_client().ip)
    method = _proof_method(proof)
    with transaction.atomic():
        if method == METHOD_WEBAUTHN:
            accepted = _passkey_accepted(user, proof.webauthn or {}, webauthn_challenge)
        elif method == METHOD_RECOVERY_CODE:
            accepted = _recovery_code_accepted(user, proof.recovery_code)
        else:
            accepted = _totp_accepted(user, proof.code)
        if accepted:
            login_attempt_release(attempt)
            if method == METHOD_RECOVERY_CODE:
                left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
                mfa_audit(
                    "mfa.recovery_code_used",
                    user=user,
                    organization=organization,
                    details={"purpose": purpose, "remaining": left},
                )
            metrics.LOGINS.labels(outcome="mfa_success").inc()
            return method
        metrics.LOGINS.labels(outcome="mfa_failure").inc()
        mfa_audit(
            "auth.mfa_failed",
            user=user,
            organization=organization,
            outcome=AuditEvent.Outcome.FAILURE,
            details={"method": method, "purpose": purpose},
        )
    return None


# --- Step-up ---------------------------------------------------------------------------


def _step_up_key(session_id: Id) -> str:
    return f"mfa:step-up:{session_id}"


def step_up_passkey_options(*, session: Session) -> dict[str, Any]:
    """Return WebAuthn assertion options for a step-up in this session.

    Their challenge is kept where every process sees it, for the answer to be checked.
    """
    options, webauthn_challenge = passkey_options(user_id=session.user_id)
    caches["shared"].set(
        _step_up_key(session.id), webauthn_challenge, settings.MFA_CHALLENGE_SECONDS
    )
    return options


def session_step_up(*, session: Session, proof: FactorProof) -> datetime:
    """Record a fresh second-factor check in the session; return its time.

    Sensitive actions are allowed for MFA_STEP_UP_SECONDS from then.

    Raises MfaCodeInvalid for a wrong proof (counted towards the lockout).
    """
    webauthn_challenge = ""
    if proof.webauthn is not None:
        webauthn_challenge = caches["shared"].get(_step_up_key(session.id)) or ""
        caches["shared"].delete(_step_up_key(session.id))
    method = factor_check(
        user=session.user,
        proof=proof,
        organization=session.organization,
        webauthn_challenge=webauthn_challenge,
        purpose="step_up",
    )
    if method is None:
        raise MfaCodeInvalid()
    return _mfa_verified(session=session, method=method)


@transaction.atomic
def _mfa_verified(*, session: Session, method: str) -> datetime:
    verified = timezone.now()
    session.mfa_verified_at = verified
    session.save(update_fields=["mfa_verified_at"])
    session_changed(session)
    mfa_audit(
        "auth.mfa_step_up",
        user=session.user,
        organization=session.organization,
        details={"method": method, "session_id": str(session.id)},
    )
    return verified
