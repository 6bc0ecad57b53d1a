"""Second factors: authenticator apps, passkeys, recovery codes and sign-in challenges."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models.identity import Session, User


class TotpFactor(models.Model):
    """An authenticator app (RFC 6238): its secret encrypted, the last time step it accepted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="totp_factors")
    name = models.CharField(max_length=64)
    # Encrypted with a key derived from SECRET_KEY; never shown again after enrolment.
    secret = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Unconfirmed until the person proves the app shows the right codes.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # A code of this time step or an earlier one is refused: each code works once.
    last_step = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"authenticator app {self.name!r} of {self.user_id}"


class WebAuthnCredential(models.Model):
    """A passkey or security key registered for a person (WebAuthn)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="webauthn_credentials")
    name = models.CharField(max_length=64)
    # base64url of the authenticator's credential id.
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"passkey {self.name!r} of {self.user_id}"


class RecoveryCode(models.Model):
    """A single-use code for when no other factor is at hand; only a keyed digest is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "digest"], name="recovery_code_unique"),
        ]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"


class MfaChallenge(models.Model):
    """A sign-in waiting for its second factor: short-lived, single use, few attempts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    # The organization asked for at sign-in (slug or id), empty for the default one.
    org = models.CharField(max_length=64, blank=True)
    session_kind = models.CharField(max_length=8, choices=Session.Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The WebAuthn challenge (base64url) handed out for this sign-in, if one was asked for.
    webauthn_challenge = models.CharField(max_length=128, blank=True)

    def __str__(self) -> str:
        return f"second-factor challenge of {self.user_id}"
