"""Second factors' cryptography: TOTP secrets and codes, recovery codes, QR codes.

Nothing here touches the database: services store what these functions return.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

TOTP_DIGITS = 6
TOTP_PERIOD = 30
# Codes of the neighbouring time steps are accepted too: clocks drift.
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_SALT = "vantage.accounts.recovery_code"


def _fernet() -> MultiFernet:
    """Encrypt with a key derived from SECRET_KEY; decrypt with it or a fallback key's."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"totp:{key}".encode()).digest()))
            for key in keys
        ]
    )


def totp_secret_new() -> str:
    """Return a new random base32 TOTP secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(length=32)


def totp_secret_seal(secret: str) -> str:
    """Return the secret encrypted for storage."""
    return _fernet().encrypt(secret.encode()).decode()


def totp_secret_open(sealed: str) -> str | None:
    """Return a stored secret decrypted, or None if no current key can decrypt it."""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def totp_uri(secret: str, *, account: str) -> str:
    """Return the otpauth:// URI an authenticator app reads from the QR code."""
    issuer = settings.MFA_ISSUER
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def totp_code_step(
    secret: str, code: str, *, after_step: int, at: float | None = None
) -> int | None:
    """Return the time step whose code `code` is, if newer than `after_step`; else None."""
    code = "".join(code.split())
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    now_step = int((time.time() if at is None else at) // TOTP_PERIOD)
    for step in range(now_step - TOTP_DRIFT_STEPS, now_step + TOTP_DRIFT_STEPS + 1):
        if step > after_step and constant_time_compare(totp.generate_otp(step), code):
            return step
    return None


def totp_code_now(secret: str, *, at: float | None = None) -> str:
    """Return the code an authenticator app shows for the secret now (or at `at`)."""
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    return totp.at(time.time() if at is None else at)


def qr_svg(data: str) -> str:
    """Return the data as a QR code in an inline SVG element, drawn here (no outside service)."""
    return str(
        segno.make(data, error="m").svg_inline(scale=4, dark="#111", light="#fff", omitsize=False)
    )


def recovery_codes_new() -> list[str]:
    """Return new recovery codes: ten of 10 letters and digits, as `xxxxx-xxxxx`."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_code_digest(code: str, *, user_id: str, secret: str | bytes | None = None) -> str:
    """Return the keyed digest a recovery code is stored as (spaces, dashes and case ignored).

    Keyed by SECRET_KEY, or by `secret` (one of SECRET_KEY_FALLBACKS, for codes
    stored before a key rotation).
    """
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return salted_hmac(
        _RECOVERY_SALT, f"{user_id}:{normal}", secret=secret, algorithm="sha256"
    ).hexdigest()


def recovery_code_digests(code: str, *, user_id: str) -> list[str]:
    """Return the digests the code may be stored as: under SECRET_KEY and each fallback."""
    keys = [None, *settings.SECRET_KEY_FALLBACKS]
    return [recovery_code_digest(code, user_id=user_id, secret=key) for key in keys]
