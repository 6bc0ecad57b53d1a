"""People, organizations, memberships with roles, groups and login sessions."""

from __future__ import annotations

import uuid

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
