"""Reads of images and jobs, always within one organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet

from config.errors import NotFound
from config.ids import Id
from images.models import Image, Job


def images_for(*, organization_id: Id, filters: dict[str, Any]) -> QuerySet[Image]:
    """Return the organization's images, newest first, narrowed by the list's filters."""
    images = Image.objects.filter(organization_id=organization_id).order_by("-created_at", "-id")
    for field, lookup in (("bucket", "bucket"), ("label", "label"), ("status", "status")):
        if filters.get(field):
            images = images.filter(**{lookup: filters[field]})
    after: datetime | None = filters.get("uploaded_after")
    before: datetime | None = filters.get("uploaded_before")
    if after:
        images = images.filter(created_at__gte=after)
    if before:
        images = images.filter(created_at__lt=before)
    return images


def image_get(*, organization_id: Id, image_id: Id) -> Image:
    """Return one of the organization's images, or raise 404 (another's is never revealed)."""
    image = Image.objects.filter(organization_id=organization_id, id=image_id).first()
    if image is None:
        raise NotFound("This organization has no image with that id.")
    return image


def job_get(*, organization_id: Id, job_id: Id) -> Job:
    """Return one of the organization's jobs, or raise 404."""
    job = Job.objects.filter(organization_id=organization_id, id=job_id).first()
    if job is None:
        raise NotFound("This organization has no job with that id.")
    return job


def image_counts_by_status(*, organization_id: Id) -> dict[str, int]:
    """Return how many of the organization's images are in each status, every status named."""
    counts = dict.fromkeys(Image.Status.values, 0)
    rows = (
        Image.objects.filter(organization_id=organization_id)
        .values_list("status")
        .annotate(total=Count("id"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


def job_counts_by_status(*, organization_id: Id) -> dict[str, int]:
    """Return how many of the organization's jobs are in each status, every status named."""
    counts = dict.fromkeys(Job.Status.values, 0)
    rows = (
        Job.objects.filter(organization_id=organization_id)
        .values_list("status")
        .annotate(total=Count("id"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


def jobs_recent(*, organization_id: Id, limit: int = 10) -> list[Job]:
    """Return the organization's latest jobs, newest first, each with its image."""
    return list(
        Job.objects.filter(organization_id=organization_id)
        .select_related("image")
        .order_by("-created_at", "-id")[:limit]
    )


def jobs_for_image(*, organization_id: Id, image_id: Id) -> QuerySet[Job]:
    """Return the jobs that worked on one of the organization's images, newest first."""
    return Job.objects.filter(organization_id=organization_id, image_id=image_id).order_by(
        "-created_at", "-id"
    )


def image_label_counts_since(*, organization_id: Id, since: datetime) -> dict[str, int]:
    """Return how many of the organization's kept images uploaded since `since` have each
    label, most frequent first: what the gallery lists with the same label and date filters."""
    rows = (
        images_for(organization_id=organization_id, filters={"uploaded_after": since})
        .exclude(label="")
        .values_list("label")
        .annotate(total=Count("id"))
        .order_by("-total", "label")
    )
    return dict(rows)
