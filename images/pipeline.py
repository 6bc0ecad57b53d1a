"""Running a job: claim it, process its image, store the result; and handing stuck jobs again."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import ExifTags
from PIL import Image as PILImage

from classifier.chain import classify_with_failover
from classifier.providers.base import ProviderError
from classifier.services import classification_record
from config.errors import DomainError
from images import metrics
from images.models import Image, Job
from images.processing import image_decode, image_sanitize, image_upscale, thumbnail_make
from images.storage_errors import STORAGE_ERRORS
from images.validation import format_of, storage_path_for

logger = structlog.get_logger("vantage.jobs")


# A failure of the storage or the database: worth another attempt later.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (*STORAGE_ERRORS, DatabaseError)


class TransientJobError(Exception):
    """A failure worth another attempt later (a provider, the storage or the database)."""


class PermanentJobError(Exception):
    """A failure no retry can mend, with a code and a message a person understands."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


def job_claim(job_id: str, *, redelivered: bool = False) -> Job | None:
    """Take the job for this worker; None if it is finished or another worker has it.

    A job left running by a worker that died is taken again when its message
    is delivered again, or once it has been running past the timeout.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_RUNNING_TIMEOUT)
    running = Q(status=Job.Status.RUNNING) & (Q() if redelivered else Q(started_at__lt=stale))
    claimed = Job.objects.filter(Q(id=job_id) & (Q(status=Job.Status.QUEUED) | running)).update(
        status=Job.Status.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return Job.objects.select_related("image").get(id=job_id)


def job_run(job_id: str, *, redelivered: bool = False) -> None:
    """Run one attempt of the job; raise TransientJobError when it should be tried again."""
    job = job_claim(job_id, redelivered=redelivered)
    if job is None:
        return
    started = time.perf_counter()
    try:
        result = _process(job)
    except PermanentJobError as exc:
        _finish(job, Job.Status.FAILED, error=(exc.code, exc.message))
    except TransientJobError as exc:
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            message = f"Processing failed {job.attempts} times; the last error: {exc}"
            _finish(job, Job.Status.FAILED, error=("PROCESSING_FAILED", message))
        else:
            Job.objects.filter(id=job.id, status=Job.Status.RUNNING).update(
                status=Job.Status.QUEUED, enqueued_at=timezone.now()
            )
            raise
    else:
        _finish(job, Job.Status.SUCCEEDED, result=result)
    finally:
        metrics.JOB_SECONDS.labels(kind=job.kind).observe(time.perf_counter() - started)


def _process(job: Job) -> dict[str, Any]:
    try:
        with default_storage.open(job.image.original_path, "rb") as stored:
            data = stored.read()
    except FileNotFoundError:
        raise PermanentJobError("IMAGE_MISSING", "The image's file is gone.") from None
    except STORAGE_ERRORS as exc:
        raise TransientJobError(f"the storage could not be read ({type(exc).__name__})") from exc
    try:
        if job.kind == Job.Kind.UPSCALE:
            return _upscale(job, data)
        return _classify(job, data)
    except DomainError as exc:
        raise PermanentJobError(exc.code, exc.detail) from exc
    except ProviderError as exc:
        if exc.permanent:
            raise PermanentJobError("CLASSIFICATION_FAILED", str(exc)) from exc
        raise TransientJobError(str(exc)) from exc
    except TRANSIENT_ERRORS as exc:
        raise TransientJobError(type(exc).__name__) from exc


def _store(path: str, data: bytes) -> str:
    """Write `data` at exactly `path` (a second run overwrites the first)."""
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(data))


def _original_sanitize(image: Image, data: bytes) -> PILImage.Image:
    """Replace the stored original with its upright copy without metadata; return the decoded."""
    decoded = image_decode(data)
    # What is kept and served: upright, without metadata (GPS included).
    _store(image.original_path, image_sanitize(decoded))
    width, height = decoded.size
    if _turned(decoded):
        width, height = height, width
    Image.objects.filter(id=image.id).update(width=width, height=height)
    decoded.seek(0)
    return decoded


def _turned(decoded: PILImage.Image) -> bool:
    """Tell whether the EXIF orientation swaps the picture's width and height."""
    return decoded.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)


def _classify(job: Job, data: bytes) -> dict[str, Any]:
    image = job.image
    decoded = _original_sanitize(image, data)
    thumbnail = storage_path_for(organization_id=image.organization_id, image_id=image.id,
                                 variant="thumbnail", extension="jpg")  # fmt: skip
    _store(thumbnail, thumbnail_make(data))
    result = classify_with_failover([decoded.convert("RGB")])[0]
    with transaction.atomic():
        stored = classification_record(
            organization_id=image.organization_id, principal_ref=image.uploaded_by,
            principal_display=image.uploaded_by_display, result=result,
            upload_sha256=image.sha256, image=image, job=job,
        )  # fmt: skip
        classification = {"classification_id": str(stored.id), **result.to_dict()}
        Image.objects.filter(id=image.id).update(
            thumbnail_path=thumbnail, classification=classification,
            label=classification["top_label"], status=Image.Status.READY,
        )  # fmt: skip
    return {"classification": classification, "thumbnail": True}


def _upscale(job: Job, data: bytes) -> dict[str, Any]:
    source, scale = job.image, int(job.scale or 2)
    _original_sanitize(source, data)
    larger = image_upscale(data, factor=scale)
    decoded = image_decode(larger)
    result_id = uuid.uuid4()
    extension = source.original_path.rsplit(".", 1)[-1]
    path = storage_path_for(organization_id=source.organization_id, image_id=result_id,
                            variant="original", extension=extension)  # fmt: skip
    stem = source.filename.rsplit(".", 1)[0]
    with transaction.atomic():
        _store(path, larger)
        Image.objects.create(
            id=result_id, organization_id=source.organization_id, uploaded_by=source.uploaded_by,
            uploaded_by_display=source.uploaded_by_display,
            filename=f"{stem}@{scale}x.{extension}", bucket=source.bucket,
            content_type=format_of(decoded).content_type, size_bytes=len(larger),
            width=decoded.width, height=decoded.height, sha256=hashlib.sha256(larger).hexdigest(),
            original_path=path, status=Image.Status.READY,
        )  # fmt: skip
    Image.objects.filter(id=source.id).update(status=Image.Status.READY)
    return {"image_id": str(result_id), "width": decoded.width, "height": decoded.height,
            "scale": scale}  # fmt: skip


def _finish(
    job: Job,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    code, message = error or ("", "")
    updated = Job.objects.filter(id=job.id, status=Job.Status.RUNNING).update(
        status=status, finished_at=timezone.now(), result=result,
        error_code=code, error_message=message,
    )  # fmt: skip
    if status == Job.Status.FAILED:
        Image.objects.filter(id=job.image_id, status=Image.Status.PROCESSING).update(
            status=Image.Status.FAILED
        )
    if updated:
        metrics.JOBS_COMPLETED.labels(kind=job.kind, status=status).inc()
        logger.info("job_finished", job_id=str(job.id), kind=job.kind, status=status,
                    attempts=job.attempts, error_code=code or None)  # fmt: skip


def jobs_requeue_stuck() -> int:
    """Hand again the jobs queued or running for too long; return how many were handed."""
    from images.services import job_enqueue

    now = timezone.now()
    queued_before = now - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT)
    running_before = now - timedelta(seconds=settings.JOB_RUNNING_TIMEOUT)
    stuck = Job.objects.filter(
        Q(status=Job.Status.QUEUED, enqueued_at__lt=queued_before)
        | Q(status=Job.Status.RUNNING, started_at__lt=running_before)
    ).values_list("id", flat=True)[:1000]
    handed = 0
    unfinished = [Job.Status.QUEUED, Job.Status.RUNNING]
    for job_id in stuck:
        taken = Job.objects.filter(id=job_id, status__in=unfinished).update(
            status=Job.Status.QUEUED, enqueued_at=now
        )
        if taken and job_enqueue(job_id):
            handed += 1
    metrics.QUEUE_DEPTH.set(Job.objects.filter(status=Job.Status.QUEUED).count())
    if handed:
        logger.warning("jobs_requeued", count=handed)
    return handed
