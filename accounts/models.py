"""Identity: users, organizations, memberships with roles, groups and login sessions."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class User(AbstractUser):
    """A person who signs in; email addresses are unique whatever their case."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address")
    name = models.CharField(max_length=150, blank=True)
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    def get_full_name(self) -> str:
        return self.name or self.username

    def get_short_name(self) -> str:
        return self.name or self.username


class MfaPolicy(models.TextChoices):
    """Which members of an organization must sign in with a second factor."""

    OFF = "off", "nobody"
    ADMINS = "admins", "admins"
    EVERYONE = "everyone", "every member"


class Organization(models.Model):
    """A customer: its members, tokens, images and audit trail belong to it."""

    class Tier(models.TextChoices):
        FREE = "free"
        PRO = "pro"
        ENTERPRISE = "enterprise"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.FREE)
    is_active = models.BooleanField(default=True)
    # The organization may allow its service tokens less than the 365 days maximum.
    token_max_lifetime_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Every service token must then name the client addresses it may be used from.
    require_allowed_ips = models.BooleanField(default=False)
    # Overrides of the tier's limits, one by one (a negotiated contract, a load
    # test); empty means the tier's number.
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    uploads_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_file_size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # Whose sign-in needs a second factor: nobody's, the admins', or every member's.
    mfa_policy = models.CharField(max_length=16, choices=MfaPolicy.choices, default=MfaPolicy.OFF)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    """Roles from most to least powerful; each inherits the permissions of those below."""

    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"
    GUEST = "guest"


class Membership(models.Model):
    """A user's place in an organization: one role, and the groups that add to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.organization_id} as {self.role}"


class Group(models.Model):
    """A named set of permissions an organization grants to some of its members."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64)
    permissions = models.JSONField(default=list, blank=True)
    members = models.ManyToManyField(Membership, related_name="groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="group_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Session(models.Model):
    """One sign-in on one device: its tokens (API) or cookie (browser) live and die with it."""

    class Kind(models.TextChoices):
        API = "api"
        BROWSER = "browser"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="login_sessions"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.API)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    device = models.CharField(max_length=128, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=64, blank=True)
    # The refresh token family: only the newest refresh token's id is valid;
    # presenting an older one means it leaked, and ends the session.
    refresh_jti = models.CharField(max_length=64, blank=True, db_index=True)
    previous_refresh_jti = models.CharField(max_length=64, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    django_session_key = models.CharField(max_length=40, blank=True, db_index=True)
    # When the person last proved a second factor in this session (sign-in or step-up).
    mfa_verified_at = models.DateTimeField(null=True, blank=True)
    # Signed in without the second factor the organization requires: only enrolling is allowed.
    mfa_enrolment_required = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="session_user_live")]

    def __str__(self) -> str:
        return f"{self.kind} session {self.id} of {self.user_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class LoginFailure(models.Model):
    """A failed sign-in, kept for the lockout window: shared by every process."""

    username = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["username", "created_at"], name="loginfailure_username"),
            models.Index(fields=["ip", "created_at"], name="loginfailure_ip"),
        ]

    def __str__(self) -> str:
        return f"{self.username} from {self.ip} at {self.created_at}"


class ServiceToken(models.Model):
    """A machine's credential: scoped, expiring, stored as a SHA-256 digest only."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        ROTATING = "rotating"
        EXPIRED = "expired"
        REVOKED = "revoked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="service_tokens"
    )
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="service_tokens"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # A rotated token is revoked at the end of its grace period: until then
    # it still works (status "rotating").
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)
    rotated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="successors"
    )
    # The first token of its rotation family: every successor carries it.
    family_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Who made this token by rotating its predecessor ("user:<id>" or
    # "service_token:<id>"), and whether the predecessor rotated itself.
    rotated_by = models.CharField(max_length=80, blank=True)
    rotated_by_display = models.CharField(max_length=200, blank=True)
    self_rotated = models.BooleanField(default=False)
    # The client addresses (IPv4/IPv6 networks, canonical) it may be used from; empty: any.
    allowed_ips = models.JSONField(default=list, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    usage_count = models.BigIntegerField(default=0)
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "revoked_at", "expires_at"], name="token_org_live"
            ),
        ]
        constraints = [
            # A token has at most one successor, however many requests rotate it at once.
            models.UniqueConstraint(
                fields=["rotated_from"],
                condition=models.Q(rotated_from__isnull=False),
                name="token_one_successor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def status_at(self, moment: Any) -> str:
        if self.revoked_at is not None and self.revoked_at <= moment:
            return self.Status.REVOKED
        if self.expires_at <= moment:
            return self.Status.EXPIRED
        if self.revoked_at is not None:
            return self.Status.ROTATING
        return self.Status.ACTIVE


class TokenUsageDay(models.Model):
    """How many requests a service token made on one day (UTC)."""

    token = models.ForeignKey(ServiceToken, on_delete=models.CASCADE, related_name="usage_days")
    date = models.DateField()
    requests = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "date"], name="token_usage_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.token_id} {self.date}: {self.requests}"


class TokenExpiryNotice(models.Model):
    """That a token's coming expiry was announced at one threshold, so it is announced once."""

    token = models.ForeignKey(ServiceToken, on_delete=models.CASCADE, related_name="notices")
    threshold_days = models.PositiveIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "threshold_days"], name="token_notice_once"),
        ]

    def __str__(self) -> str:
        return f"{self.token_id} within {self.threshold_days} days"


class UploadDay(models.Model):
    """An organization's uploads counted on one UTC day, against its daily quota."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="upload_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day}: {self.count}"


class CacheInvalidation(models.Model):
    """A shared cache entry to drop that could not be dropped when its change committed.

    Written when the cache is unreachable; replayed (the entry deleted) as soon
    as it is reachable again, before any process trusts what it holds.
    """

    key = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class Invitation(models.Model):
    """An offer to join an organization, made to an email address; the invited person decides.

    Whether an account exists for the address is never shown to the inviting
    organization: the person accepts (or declines) from their own account.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        REVOKED = "revoked"

    # What a reader sees: the state, or "expired" for a pending one past its time.
    EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    # Kept in lower case: one address, whatever case the admin typed.
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    groups = models.ManyToManyField(Group, related_name="invitations", blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    # Who accepted or declined it (the account of the address, at that moment).
    responded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["email", "state"], name="invitation_email_state")]
        constraints = [
            # One open invitation per address and organization: inviting again renews it.
            models.UniqueConstraint(
                "organization",
                "email",
                condition=models.Q(state="pending"),
                name="invitation_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization_id} as {self.role}"

    def status_at(self, moment: Any) -> str:
        if self.state == self.State.PENDING and self.expires_at <= moment:
            return self.EXPIRED
        return str(self.state)

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())


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
