"""Each organization's count of uploads per day, against its daily quota."""

from __future__ import annotations

from django.db import models

from accounts.models.identity import Organization


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
