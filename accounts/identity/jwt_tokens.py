"""JSON Web Tokens for people: issue a pair for a session, and read one back."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    ExpiredTokenError,
    TokenBackendError,
    TokenBackendExpiredToken,
    TokenError,
)
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from accounts.errors import AuthenticationFailed, TokenExpired
from accounts.models import Membership, Session
from config.lru import BoundedLRU

REQUIRED_CLAIMS = ("sub", "org_id", "sid", "jti", "type", "iat", "exp")
UUID_CLAIMS = ("sub", "org_id", "sid")


def token_pair_issue(*, session: Session, membership: Membership) -> dict[str, Any]:
    """Return a new access and refresh token for the session (and the refresh token's id)."""
    refresh = RefreshToken()
    user = membership.user
    refresh["sub"] = str(user.id)
    refresh["org_id"] = str(membership.organization_id)
    refresh["email"] = user.email
    refresh["name"] = user.name
    refresh["role"] = membership.role
    refresh["sid"] = str(session.id)
    access = refresh.access_token
    return {
        "access": str(access),
        "refresh": str(refresh),
        "refresh_jti": str(refresh["jti"]),
        "expires_in": int(AccessToken.lifetime.total_seconds()) if AccessToken.lifetime else 0,
    }


def _verified_token(token_class: type[Token], raw: str) -> Token:
    """Return the token verified with the signing key, or with a previous one.

    Tokens are signed with JWT_SIGNING_KEY only; those signed before it was
    replaced stay valid, until they expire, while their key is listed in
    JWT_PREVIOUS_SIGNING_KEYS: the key can be rotated without signing anyone out.
    """
    try:
        return token_class(raw)  # type: ignore[arg-type]
    except ExpiredTokenError:
        raise
    except TokenError:
        for key in settings.JWT_PREVIOUS_SIGNING_KEYS:
            backend = TokenBackend(
                algorithm=jwt_settings.ALGORITHM, signing_key=key, leeway=jwt_settings.LEEWAY
            )
            try:
                backend.decode(raw, verify=True)  # type: ignore[arg-type]
            except TokenBackendExpiredToken as exc:
                raise ExpiredTokenError("Token is expired") from exc
            except TokenBackendError:
                continue
            # The signature is the previous key's; the rest (expiry, type) as usual.
            token = token_class(raw, verify=False)  # type: ignore[arg-type]
            token.verify()
            return token
        raise


def _claims(token_class: type[Token], raw: str) -> dict[str, Any]:
    try:
        payload = dict(_verified_token(token_class, raw).payload)
    except ExpiredTokenError as exc:
        raise TokenExpired() from exc
    except TokenError as exc:
        raise AuthenticationFailed("The token is invalid.") from exc
    missing = [claim for claim in REQUIRED_CLAIMS if not payload.get(claim)]
    if missing:
        raise AuthenticationFailed(f"The token lacks required claims: {', '.join(missing)}.")
    for claim in UUID_CLAIMS:
        try:
            uuid.UUID(str(payload[claim]))
        except ValueError as exc:
            raise AuthenticationFailed(f"The token's {claim} claim is malformed.") from exc
    return payload


# Verifying an HS256 signature costs far more than the rest of a request's
# authentication; a token's signature cannot change, so each is checked once
# per process. Expiry is checked on every use; revocation is not a property of
# the token and is checked per request elsewhere.
_verified: BoundedLRU[dict[str, Any]] = BoundedLRU(size=10_000)


def access_claims(raw: str) -> dict[str, Any]:
    """Return a verified access token's claims, or raise a 401 domain error."""
    key = hashlib.sha256(raw.encode()).digest()
    claims = _verified.get(key)
    if claims is None:
        claims = _claims(AccessToken, raw)
        _verified.put(key, claims)
    if claims["exp"] <= time.time():
        raise TokenExpired()
    return claims


def refresh_claims(raw: str) -> dict[str, Any]:
    """Return a verified refresh token's claims, or raise a 401 domain error."""
    return _claims(RefreshToken, raw)
