"""Identity's models, one module per job; every model is imported here for Django."""

from accounts.models.caching import CacheInvalidation
from accounts.models.factors import MfaChallenge, RecoveryCode, TotpFactor, WebAuthnCredential
from accounts.models.identity import (
    Group,
    LoginFailure,
    Membership,
    MfaPolicy,
    Organization,
    Role,
    Session,
    User,
)
from accounts.models.invitations import Invitation
from accounts.models.quotas import UploadDay
from accounts.models.tokens import ServiceToken, TokenExpiryNotice, TokenUsageDay

__all__ = [
    "CacheInvalidation",
    "Group",
    "Invitation",
    "LoginFailure",
    "Membership",
    "MfaChallenge",
    "MfaPolicy",
    "Organization",
    "RecoveryCode",
    "Role",
    "ServiceToken",
    "Session",
    "TokenExpiryNotice",
    "TokenUsageDay",
    "TotpFactor",
    "UploadDay",
    "User",
    "WebAuthnCredential",
]
