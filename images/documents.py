"""A job and an image as JSON documents: what the API shows, for webhook payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from images.models import Image, Job


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def job_document(job: Job) -> dict[str, Any]:
    """Return the job as GET /api/v1/images/jobs/{id} shows it."""
    return {
        "id": str(job.id),
        "image_id": str(job.image_id),
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "created_at": _when(job.created_at),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
        "result": job.result,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
    }


def image_document(image: Image) -> dict[str, Any]:
    """Return the image as GET /api/v1/images/{id} shows it."""
    return {
        "id": str(image.id),
        "filename": image.filename,
        "bucket": image.bucket,
        "content_type": image.content_type,
        "size_bytes": image.size_bytes,
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "uploaded_by": image.uploaded_by_display,
        "created_at": _when(image.created_at),
        "status": image.status,
        "classification": image.classification,
        "file_url": reverse("image-file", args=[image.id]),
        "thumbnail_url": reverse("image-thumbnail", args=[image.id])
        if image.thumbnail_path
        else None,
    }
