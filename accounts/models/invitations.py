"""Invitations to join an organization."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from accounts.models.identity import Group, Organization, Role, User


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
