"""WebAuthn ceremonies (passkeys, security keys) for this installation's relying party.

The relying party id and the origins a browser may sign for are settings
(WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS): a passkey is bound to the site's domain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

CEREMONY_TIMEOUT_MS = 120_000


class PasskeyRefused(Exception):
    """The browser's answer did not prove the credential (wrong challenge, origin, signature)."""


@dataclass(frozen=True)
class Registered:
    credential_id: str
    public_key: bytes
    sign_count: int
    transports: list[str]


def _descriptor(credential_id: str, transports: list[str]) -> PublicKeyCredentialDescriptor:
    known = {t.value for t in AuthenticatorTransport}
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(credential_id),
        transports=[AuthenticatorTransport(t) for t in transports if t in known],
    )


def registration_options(
    *, user_id: str, username: str, display_name: str, existing: list[tuple[str, list[str]]]
) -> tuple[dict[str, Any], str]:
    """Return the options for navigator.credentials.create() and their challenge (base64url)."""
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_name=username,
        user_id=user_id.encode(),
        user_display_name=display_name or username,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(cid, transports) for cid, transports in existing],
    )
    return json.loads(options_to_json(options)), bytes_to_base64url(options.challenge)


def registration_verify(*, credential: dict[str, Any], challenge: str) -> Registered:
    """Return the new credential proven by the browser's answer, or raise PasskeyRefused."""
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(str(exc)) from exc
    transports = credential.get("response", {}).get("transports") or []
    return Registered(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[str(t) for t in transports][:8],
    )


def authentication_options(*, allowed: list[tuple[str, list[str]]]) -> tuple[dict[str, Any], str]:
    """Return the options for navigator.credentials.get() and their challenge (base64url)."""
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=[_descriptor(cid, transports) for cid, transports in allowed],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return json.loads(options_to_json(options)), bytes_to_base64url(options.challenge)


def assertion_credential_id(assertion: dict[str, Any]) -> str:
    """Return the credential id (base64url) an assertion names, or raise PasskeyRefused."""
    raw = assertion.get("rawId") or assertion.get("id")
    if not isinstance(raw, str) or not raw:
        raise PasskeyRefused("The assertion names no credential.")
    try:
        return bytes_to_base64url(base64url_to_bytes(raw))
    except ValueError as exc:
        raise PasskeyRefused("The assertion's credential id is malformed.") from exc


def assertion_verify(
    *, assertion: dict[str, Any], challenge: str, public_key: bytes, sign_count: int
) -> int:
    """Return the authenticator's new sign count if the assertion is proven, else raise."""
    try:
        verified = verify_authentication_response(
            credential=assertion,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(str(exc)) from exc
    return verified.new_sign_count
