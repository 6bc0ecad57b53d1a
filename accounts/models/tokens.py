"""Service tokens, their daily use and the expiry notices sent about them."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from accounts.models.identity import Organization, User


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
