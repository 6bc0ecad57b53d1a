"""A person's second factors: enrol an authenticator app or a passkey, name, remove, reset;
recovery codes; and the organization's policy requiring them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import PermissionDenied
from accounts.identity.passkeys import PasskeyRefused, registration_options, registration_verify
from accounts.identity.principal import organization_changed, session_changed
from accounts.identity.second_factors import (
    qr_svg,
    recovery_code_digest,
    recovery_codes_new,
    totp_code_step,
    totp_secret_new,
    totp_secret_open,
    totp_secret_seal,
    totp_uri,
)
from accounts.models import (
    Membership,
    MfaChallenge,
    MfaPolicy,
    Organization,
    RecoveryCode,
    Session,
    TotpFactor,
    User,
    WebAuthnCredential,
)
from accounts.selectors import user_has_factor
from accounts.services.second_factors import mfa_audit
from accounts.services.sessions import sessions_revoke_all
from audit.services import audit_record
from config.errors import InvalidInput, NotFound
from config.ids import Id
from config.request_context import Actor, current_actor

Factor = TotpFactor | WebAuthnCredential


@dataclass(frozen=True)
class TotpEnrolment:
    """A new authenticator app waiting for its first code; the secret is shown this once."""

    factor: TotpFactor
    secret: str
    uri: str
    qr_svg: str


@dataclass(frozen=True)
class Enrolled:
    """A factor just enrolled, and the recovery codes made with a person's first factor."""

    factor: Factor
    recovery_codes: list[str] | None


def _name_checked(name: str, default: str) -> str:
    name = " ".join(name.split())[:64]
    return name or default


@transaction.atomic
def totp_begin(*, user: User, name: str = "") -> TotpEnrolment:
    """Start enrolling an authenticator app: a new secret, its URI and QR code."""
    # One enrolment in progress at a time: an abandoned one leaves nothing behind.
    TotpFactor.objects.filter(user=user, confirmed_at__isnull=True).delete()
    secret = totp_secret_new()
    factor = TotpFactor.objects.create(
        user=user, name=_name_checked(name, "Authenticator app"), secret=totp_secret_seal(secret)
    )
    return _enrolment(factor, secret)


def _enrolment(factor: TotpFactor, secret: str) -> TotpEnrolment:
    uri = totp_uri(secret, account=factor.user.email or factor.user.username)
    return TotpEnrolment(factor=factor, secret=secret, uri=uri, qr_svg=qr_svg(uri))


def totp_enrolment_show(*, user: User, factor_id: Id) -> TotpEnrolment:
    """Return an authenticator app still waiting for its first code, to show it again."""
    factor = TotpFactor.objects.filter(user=user, id=factor_id, confirmed_at__isnull=True).first()
    secret = totp_secret_open(factor.secret) if factor is not None else None
    if factor is None or secret is None:
        raise NotFound("No authenticator app of yours is waiting for confirmation with that id.")
    return _enrolment(factor, secret)


@transaction.atomic
def totp_confirm(
    *, user: User, factor_id: Id, code: str, organization: Organization, session_id: Id | None
) -> Enrolled:
    """Finish enrolling an authenticator app with a code it shows; raises InvalidInput if wrong."""
    factor = (
        TotpFactor.objects.select_for_update()
        .filter(user=user, id=factor_id, confirmed_at__isnull=True)
        .first()
    )
    if factor is None:
        raise NotFound("No authenticator app of yours is waiting for confirmation with that id.")
    secret = totp_secret_open(factor.secret) or ""
    step = totp_code_step(secret, code, after_step=0)
    if step is None:
        raise InvalidInput(
            "The code is not the one the app shows now; check the device's clock and try "
            "the next code.",
            field="code",
        )
    factor.confirmed_at = timezone.now()
    factor.last_step = step
    factor.last_used_at = factor.confirmed_at
    factor.save(update_fields=["confirmed_at", "last_step", "last_used_at"])
    return _enrolled(factor, "totp", organization=organization, session_id=session_id)


def _register_key(user_id: Id) -> str:
    return f"mfa:passkey-register:{user_id}"


def passkey_register_options(*, user: User) -> dict[str, Any]:
    """Return options for the browser to create a passkey; their challenge is kept 5 minutes,
    where every process sees it."""
    existing = [
        (credential_id, list(transports))
        for credential_id, transports in WebAuthnCredential.objects.filter(user=user).values_list(
            "credential_id", "transports"
        )
    ]
    options, challenge = registration_options(
        user_id=str(user.id), username=user.username, display_name=user.name, existing=existing
    )
    caches["shared"].set(_register_key(user.id), challenge, settings.MFA_CHALLENGE_SECONDS)
    return options


@transaction.atomic
def passkey_register(
    *,
    user: User,
    name: str,
    credential: dict[str, Any],
    organization: Organization,
    session_id: Id | None,
) -> Enrolled:
    """Enrol the passkey the browser created for the options; raises InvalidInput if unproven."""
    challenge = caches["shared"].get(_register_key(user.id))
    caches["shared"].delete(_register_key(user.id))
    if not challenge:
        raise InvalidInput(
            "No passkey registration is in progress (or it expired): ask for options again.",
            field="credential",
        )
    try:
        registered = registration_verify(credential=credential, challenge=challenge)
    except PasskeyRefused as exc:
        raise InvalidInput(f"The passkey was not accepted: {exc}", field="credential") from exc
    if WebAuthnCredential.objects.filter(credential_id=registered.credential_id).exists():
        raise InvalidInput("This passkey is registered already.", field="credential")
    factor = WebAuthnCredential.objects.create(
        user=user,
        name=_name_checked(name, "Passkey"),
        credential_id=registered.credential_id,
        public_key=registered.public_key,
        sign_count=registered.sign_count,
        transports=registered.transports,
    )
    return _enrolled(factor, "webauthn", organization=organization, session_id=session_id)


def _enrolled(
    factor: Factor, kind: str, *, organization: Organization, session_id: Id | None
) -> Enrolled:
    user = factor.user
    codes = None
    if not RecoveryCode.objects.filter(user=user, used_at__isnull=True).exists():
        codes = _recovery_codes_replace(user)
    now = timezone.now()
    # Enrolling proves the factor: this session counts as freshly checked, and no
    # session of the person is held back for want of a factor any more.
    sessions = Session.objects.select_related("organization").filter(
        Q(id=session_id) | Q(mfa_enrolment_required=True), user=user, revoked_at__isnull=True
    )
    for session in sessions:
        if str(session.id) == str(session_id):
            session.mfa_verified_at = now
        session.mfa_enrolment_required = False
        session.save(update_fields=["mfa_verified_at", "mfa_enrolment_required"])
        session_changed(session)
    mfa_audit(
        "mfa.enrolled",
        user=user,
        organization=organization,
        details={
            "kind": kind,
            "factor_id": str(factor.id),
            "name": factor.name,
            "recovery_codes_made": codes is not None,
        },
    )
    return Enrolled(factor=factor, recovery_codes=codes)


def _recovery_codes_replace(user: User) -> list[str]:
    codes = recovery_codes_new()
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, digest=recovery_code_digest(code, user_id=str(user.id)))
        for code in codes
    )
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User, organization: Organization) -> list[str]:
    """Replace the person's recovery codes with ten new ones (shown once); the old stop working."""
    if not user_has_factor(user_id=user.id):
        raise InvalidInput("Enrol an authenticator app or a passkey before making recovery codes.")
    codes = _recovery_codes_replace(user)
    mfa_audit(
        "mfa.recovery_codes_generated",
        user=user,
        organization=organization,
        details={"count": len(codes)},
    )
    return codes


def _factor_locked(user: User, factor_id: Id) -> Factor:
    app = (
        TotpFactor.objects.select_for_update()
        .filter(user=user, id=factor_id, confirmed_at__isnull=False)
        .first()
    )
    if app is not None:
        return app
    passkey = WebAuthnCredential.objects.select_for_update().filter(user=user, id=factor_id).first()
    if passkey is not None:
        return passkey
    raise NotFound("You have no second factor with that id.")


@transaction.atomic
def factor_rename(*, user: User, factor_id: Id, name: str, organization: Organization) -> Factor:
    """Give one of the person's factors another name."""
    factor = _factor_locked(user, factor_id)
    previous, factor.name = factor.name, _name_checked(name, factor.name)
    factor.save(update_fields=["name"])
    details = {"factor_id": str(factor.id), "from": previous, "to": factor.name}
    mfa_audit("mfa.renamed", user=user, organization=organization, details=details)
    return factor


@transaction.atomic
def factor_remove(*, user: User, factor_id: Id, organization: Organization) -> bool:
    """Remove one of the person's factors; returns whether it was their last.

    With the last one go the recovery codes: they belong to a second factor.
    """
    factor = _factor_locked(user, factor_id)
    kind = "totp" if isinstance(factor, TotpFactor) else "webauthn"
    factor.delete()
    last = not user_has_factor(user_id=user.id)
    if last:
        RecoveryCode.objects.filter(user=user).delete()
    mfa_audit(
        "mfa.removed",
        user=user,
        organization=organization,
        details={"factor_id": str(factor_id), "kind": kind, "name": factor.name, "last": last},
    )
    return last


@transaction.atomic
def mfa_reset(
    *, user: User, organization: Organization | None, actor: Actor | None = None, reason: str
) -> int:
    """Remove every second factor and recovery code of the person and end their sessions.

    For a person who lost their factors, at an admin's or staff's request
    (audited). Returns how many factors were removed.
    """
    removed = (
        TotpFactor.objects.filter(user=user).delete()[0]
        + WebAuthnCredential.objects.filter(user=user).delete()[0]
    )
    RecoveryCode.objects.filter(user=user).delete()
    MfaChallenge.objects.filter(user=user).delete()
    ended = sessions_revoke_all(user=user, reason="mfa_reset")
    mfa_audit(
        "mfa.reset",
        user=user,
        organization=organization,
        actor=actor or current_actor(),
        details={"factors_removed": removed, "sessions_ended": ended, "reason": reason},
    )
    return removed


@transaction.atomic
def member_mfa_reset(*, membership: Membership, reason: str) -> int:
    """Reset a member's factors at their organization's admin's request (see `mfa_reset`).

    Only for a person who belongs to no other organization: their factors guard
    every organization's sign-in, so any other resets are left to staff.
    """
    others = Membership.objects.filter(user_id=membership.user_id, organization__is_active=True)
    if others.exclude(organization_id=membership.organization_id).exists():
        raise PermissionDenied(
            "This person also belongs to other organizations, whose sign-ins their factors "
            "guard too: ask a staff member to reset them (manage.py reset_mfa)."
        )
    return mfa_reset(user=membership.user, organization=membership.organization, reason=reason)


@transaction.atomic
def mfa_policy_set(*, organization: Organization, policy: str) -> Organization:
    """Set which members must sign in with a second factor (from their next sign-in on)."""
    if policy not in MfaPolicy.values:
        raise InvalidInput(f"Choose one of: {', '.join(MfaPolicy.values)}.", field="mfa_policy")
    organization = Organization.objects.select_for_update().get(id=organization.id)
    previous = organization.mfa_policy
    if previous == policy:
        return organization
    organization.mfa_policy = policy
    organization.save(update_fields=["mfa_policy"])
    organization_changed(organization.id)
    audit_record(
        action="org.mfa_policy_changed",
        organization_id=organization.id,
        organization_display=organization.slug,
        resource_type="organization",
        resource_id=str(organization.id),
        details={"from": previous, "to": policy},
    )
    return organization
