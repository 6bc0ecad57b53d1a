"""JSON Web Tokens for people: issue a pair for a session, and read one back."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
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


def _claims(token_class: type[Token], raw: str) -> dict[str, Any]:
    try:
        payload = dict(token_class(raw).payload)  # type: ignore[arg-type]
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
