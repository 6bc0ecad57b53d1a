"""Classifications kept for the record, and the vehicle reports that cite them."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Organization


class Classification(models.Model):
    """What the classifier concluded about one image: an uploaded one, or one sent to classify.

    An image classified synchronously is not stored; its SHA-256 says which it was.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="classifications"
    )
    # Who asked: "user:<id>" or "service_token:<id>", and a name to show.
    principal = models.CharField(max_length=80)
    principal_display = models.CharField(max_length=200)
    image = models.ForeignKey(
        "images.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="classifications",
    )
    # The job that produced it: a job run twice still keeps one classification.
    job = models.OneToOneField(
        "images.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    upload_sha256 = models.CharField(max_length=64)
    is_vehicle = models.BooleanField()
    top_label = models.CharField(max_length=32)
    # The categories and ImageNet classes with their confidences, as the API shows them.
    predictions = models.JSONField()
    vehicle_probability = models.FloatField()
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    processing_time_ms = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.top_label} ({self.id})"


class VehicleReport(models.Model):
    """A note about a vehicle, filed under the caller's id for it, citing what was seen."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="vehicle_reports"
    )
    vehicle_id = models.CharField(max_length=64)
    classification = models.ForeignKey(
        Classification, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    image = models.ForeignKey(
        "images.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    data = models.JSONField(default=dict, blank=True)
    reported_by = models.CharField(max_length=80)
    reported_by_display = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "vehicle_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.vehicle_id} ({self.id})"
