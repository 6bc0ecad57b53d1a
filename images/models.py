"""Uploaded images, the jobs that process them, and the answers kept for idempotent retries."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Organization


class Image(models.Model):
    """An image an organization uploaded, with what was learned about it and where it is stored."""

    class Status(models.TextChoices):
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="images")
    # Who uploaded it: "user:<id>" or "service_token:<id>", and a name to show.
    uploaded_by = models.CharField(max_length=80)
    uploaded_by_display = models.CharField(max_length=200)
    filename = models.CharField(max_length=255)
    bucket = models.CharField(max_length=64, default="default")
    content_type = models.CharField(max_length=32)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    # Storage names, built from ids only (images.validation.storage_path_for).
    original_path = models.CharField(max_length=255)
    thumbnail_path = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    classification = models.JSONField(null=True, blank=True)
    # The best category once classified (car, truck, ... or not_vehicle), for filtering.
    label = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["organization", "label"]),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.id})"


class Job(models.Model):
    """Background work on one image: classify it, or upscale it."""

    class Kind(models.TextChoices):
        CLASSIFY = "classify"
        UPSCALE = "upscale"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The upscale factor (2 or 4); None for classification.
    scale = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # When it was last handed to the queue: a job queued long ago and never
    # started is handed again (its message was lost, or the broker was down).
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "enqueued_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class IdempotentUpload(models.Model):
    """The first answer to an upload sent with an Idempotency-Key, kept for 24 hours."""

    principal = models.CharField(max_length=80)
    key_digest = models.CharField(max_length=64)
    # The SHA-256 of the file first sent: a retry must send the same file.
    file_sha256 = models.CharField(max_length=64)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key_digest"], name="idempotent_upload")
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key_digest[:12]}"
