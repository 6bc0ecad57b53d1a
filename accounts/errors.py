"""Identity's domain errors, each with its status and stable code."""

from __future__ import annotations

import datetime as dt
import math

from django.utils import timezone

from accounts.models import ServiceToken
from config.errors import Conflict, DomainError, InvalidInput

_BEARER = {"WWW-Authenticate": 'Bearer realm="api"'}


class AuthenticationFailed(DomainError):
    status = 401
    code = "AUTHENTICATION_FAILED"
    title = "Authentication failed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers=_BEARER)


class TokenExpired(AuthenticationFailed):
    code = "TOKEN_EXPIRED"
    title = "Token expired"
    default_detail = "The token has expired."


class TokenRevoked(AuthenticationFailed):
    code = "TOKEN_REVOKED"
    title = "Token revoked"
    default_detail = "The token has been revoked; sign in again."


class RotatedTokenPresented(TokenRevoked):
    """A service token rotated out (its grace over) was presented: a copy may be loose."""

    def __init__(self, *, token_id: str, revoked_at: float) -> None:
        super().__init__("The service token was rotated and its grace period is over.")
        self.token_id = token_id
        self.revoked_at = revoked_at


class MfaRequired(AuthenticationFailed):
    """The password was right; the sign-in now waits for a second factor."""

    code = "MFA_REQUIRED"
    title = "Second factor required"

    def __init__(self, *, challenge: str, methods: list[str], expires_in: int) -> None:
        super().__init__(
            "The password is right; prove a second factor with POST /api/v1/auth/token/mfa "
            "and this challenge to finish signing in."
        )
        self.challenge = challenge
        self.methods = methods
        self.extensions = {"challenge": challenge, "methods": methods, "expires_in": expires_in}


class MfaChallengeInvalid(AuthenticationFailed):
    code = "MFA_CHALLENGE_INVALID"
    title = "Sign-in challenge invalid"
    default_detail = (
        "The sign-in challenge is unknown, used, expired or out of attempts; sign in again "
        "with your password."
    )


class MfaCodeInvalid(AuthenticationFailed):
    code = "MFA_CODE_INVALID"
    title = "Second factor refused"
    default_detail = "The code or passkey was not accepted."


class MfaStepUpRequired(DomainError):
    status = 403
    code = "MFA_STEP_UP_REQUIRED"
    title = "Recent second factor required"
    default_detail = (
        "This action needs a recent second-factor check: prove one with "
        "POST /api/v1/auth/mfa/step-up, then try again."
    )


class MfaEnrolmentRequired(DomainError):
    status = 403
    code = "MFA_ENROLMENT_REQUIRED"
    title = "Second factor enrolment required"
    default_detail = (
        "Your organization requires a second factor: enrol one (POST /api/v1/auth/mfa/totp "
        "or /api/v1/auth/mfa/webauthn) before doing anything else."
    )


class TooManyLoginAttempts(DomainError):
    status = 429
    code = "TOO_MANY_LOGIN_ATTEMPTS"
    title = "Too many login attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-in attempts; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


class PermissionDenied(DomainError):
    status = 403
    code = "PERMISSION_DENIED"
    title = "Permission denied"


class LastAdmin(DomainError):
    status = 409
    code = "CONFLICT"
    title = "Last admin"
    default_detail = (
        "An organization must keep at least one admin: promote another member to admin first."
    )


class AuthorizationUnavailable(DomainError):
    status = 503
    code = "AUTHORIZATION_UNAVAILABLE"
    title = "Authorization unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "The authorization decision point cannot be reached; the request was refused. "
            f"Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


class IpNotAllowed(DomainError):
    status = 403
    code = "IP_NOT_ALLOWED"
    title = "Client address not allowed"

    def __init__(self, ip: str | None) -> None:
        super().__init__(
            f"This token may not be used from {ip or 'an unknown address'}: "
            "the address is not in its allow-list."
        )


class RotationInProgress(Conflict):
    title = "Rotation in progress"
    default_detail = (
        "Another request is rotating this token at the same moment; only one successor is "
        "made. Use the successor that request received."
    )


class TokenNameTaken(Conflict):
    title = "Token name in use"

    def __init__(self, token: ServiceToken) -> None:
        detail = (
            f"A live token is already named {token.name!r} in this organization "
            f"({token.prefix}…). Choose another name, or rotate that token for a new secret."
        )
        super().__init__(detail, errors=[{"field": "name", "message": detail, "code": "taken"}])


class QuotaExceeded(DomainError):
    status = 429
    code = "QUOTA_EXCEEDED"
    title = "Daily quota exceeded"

    def __init__(self, limit: int, resets_at: dt.datetime) -> None:
        wait = max(1, math.ceil((resets_at - timezone.now()).total_seconds()))
        super().__init__(
            f"Your organization has used its {limit} uploads for today; the quota resets at "
            f"{resets_at.isoformat()} (in {wait} seconds).",
            headers={
                "Retry-After": str(wait),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(wait),
            },
        )


class FormRejected(InvalidInput):
    """A form the API's serializer refused, with every message."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(" ".join(messages))
        self.messages = messages


class RateLimitExceeded(DomainError):
    status = 429
    code = "RATE_LIMIT_EXCEEDED"
    title = "Rate limit exceeded"

    _WHOSE = {
        "principal": "your",
        "organization": "your organization's",
        "client": "this address's",
    }

    def __init__(self, *, window: str, limit: int, reset: int, headers: dict[str, str]) -> None:
        super().__init__(
            f"You have used {self._WHOSE[window]} {limit} requests per minute; "
            f"try again in {max(1, reset)} seconds.",
            headers=headers,
        )


class DecisionPointError(Exception):
    """The decision point answered, but not with a decision."""
