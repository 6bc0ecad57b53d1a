"""The audit log: append-only events, hash-chained per organization."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

from audit.errors import AppendOnlyError

GENESIS_HASH = "0" * 64
# Events not about one organization (a failed login for an unknown user,
# the system's own maintenance) form a chain of their own.
SYSTEM_CHAIN = "system"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit events are append-only; use the audit_purge command")


class AuditEvent(models.Model):
    """One security-relevant event; it names actors and organizations by value, not by key."""

    class ActorType(models.TextChoices):
        USER = "user"
        SERVICE_TOKEN = "service_token"  # noqa: S105 (a name, not a secret)
        ANONYMOUS = "anonymous"
        SYSTEM = "system"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        DENIED = "denied"

    # The integer key orders events globally and makes the newest page an
    # index range scan whatever the table's size; the UUID is the public id.
    seq = models.BigAutoField(primary_key=True)
    id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    chain = models.CharField(max_length=64)
    position = models.BigIntegerField()
    timestamp = models.DateTimeField(default=timezone.now)
    organization_id = models.UUIDField(null=True, blank=True)
    organization_display = models.CharField(max_length=200, blank=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_display = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "position"], name="audit_event_chain_position"
            ),
        ]
        indexes = [
            models.Index(fields=["organization_id", "-seq"], name="audit_org_newest"),
            models.Index(fields=["organization_id", "action", "-seq"], name="audit_org_action"),
            models.Index(
                fields=["organization_id", "actor_type", "actor_id", "-seq"], name="audit_org_actor"
            ),
            models.Index(
                fields=["organization_id", "resource_type", "resource_id", "-seq"],
                name="audit_org_resource",
            ),
            models.Index(fields=["organization_id", "request_id"], name="audit_org_request"),
            models.Index(fields=["timestamp"], name="audit_timestamp"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_type}:{self.actor_id} ({self.outcome})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only; use the audit_purge command")


class AuditChainHead(models.Model):
    """The newest event of one chain; locking this row serializes that chain's writers."""

    chain = models.CharField(max_length=64, primary_key=True)
    position = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chain} @ {self.position}"


class AuditCheckpoint(models.Model):
    """Where a purge cut a chain: verification resumes from this hash and position."""

    chain = models.CharField(max_length=64)
    position = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    purged_events = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "position"], name="audit_checkpoint_position"),
        ]

    def __str__(self) -> str:
        return f"{self.chain} cut at {self.position}"


class SinkBacklog(models.Model):
    """An event whose copy to the audit sink could not be queued (the broker was down).

    `audit.sink_backlog_resend` (beat, every minute) queues it again and then
    forgets it; the sink receives each event at least once.
    """

    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.event_id)
