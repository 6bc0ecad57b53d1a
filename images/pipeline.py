"""Running a job: claim it, process its image, store the result; and handing stuck jobs again."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import ExifTags
from PIL import Image as PILImage

from classifier.chain import classify_with_failover
from classifier.errors import ProviderError
from classifier.preprocessing import model_input
from classifier.services import classification_record
from config.errors import DomainError
from images import metrics
from images.documents import job_document
from images.errors import ClaimLost, PermanentJobError, TransientJobError
from images.models import Image, Job
from images.processing import image_decode, image_sanitize, image_upscale, thumbnail_make
from images.queue import job_enqueue
from images.storage_errors import STORAGE_ERRORS, storage_error_code
from images.stored_files import file_discard, file_write
from images.validation import format_of, storage_path_for
from webhooks.services.callbacks import job_callback_endpoint
from webhooks.services.events import webhook_event_emit

logger = structlog.get_logger("vantage.jobs")


def job_claim(
    job_id: str, *, redelivered: bool = False, after_attempt: int | None = None
) -> Job | None:
    """Take the job for this worker; None if it is finished or another worker has it.

    A job left running by a worker that died is taken again when its message
    is delivered again, or once it has been running past the timeout. The
    retry of attempt `after_attempt` takes the job back at once if no other
    attempt has claimed it since: that attempt ended, whatever the job's status.
    """
    now = timezone.now()
    takeover = Q(started_at__lt=now - timedelta(seconds=settings.JOB_RUNNING_TIMEOUT))
    if redelivered:
        takeover = Q()
    elif after_attempt is not None:
        takeover |= Q(attempts=after_attempt)
    running = Q(status=Job.Status.RUNNING) & takeover
    claimed = Job.objects.filter(Q(id=job_id) & (Q(status=Job.Status.QUEUED) | running)).update(
        status=Job.Status.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return Job.objects.select_related("image").get(id=job_id)


def job_run(job_id: str, *, redelivered: bool = False, after_attempt: int | None = None) -> None:
    """Run one attempt of the job; raise TransientJobError when it should be tried again."""
    try:
        job = job_claim(job_id, redelivered=redelivered, after_attempt=after_attempt)
    except DatabaseError as exc:
        close_old_connections()
        message = f"the database could not be reached ({type(exc).__name__})"
        raise TransientJobError(message, attempt=after_attempt) from exc
    if job is None:
        return
    started = time.perf_counter()
    try:
        _attempt(job)
    except DatabaseError as exc:
        # The database went away mid-attempt: the retry takes the job back from this attempt.
        close_old_connections()
        message = f"the database failed ({type(exc).__name__})"
        raise TransientJobError(message, attempt=job.attempts) from exc
    finally:
        metrics.JOB_SECONDS.labels(kind=job.kind).observe(time.perf_counter() - started)


def _attempt(job: Job) -> None:
    try:
        _process(job)
    except ClaimLost:
        _discarded(job, "claim_lost")
    except PermanentJobError as exc:
        _finish(job, Job.Status.FAILED, error=(exc.code, exc.message))
    except TransientJobError as exc:
        exc.attempt = job.attempts
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            _finish(job, Job.Status.FAILED, error=(exc.code, _last_words(job, exc)))
            return
        _requeue(job)
        raise


def _last_words(job: Job, exc: TransientJobError) -> str:
    """Return the message of a job failed for good by transient errors."""
    message = f"Processing failed {job.attempts} times; the last error: {exc}."
    if exc.code in ("INSUFFICIENT_STORAGE", "STORAGE_UNAVAILABLE"):
        message += " The image is kept as uploaded; the server's storage was at fault."
    return message


def _requeue(job: Job) -> None:
    """Put the job back in the queue for its retry, on a new connection if the old one died."""
    back = Job.objects.filter(id=job.id, status=Job.Status.RUNNING, attempts=job.attempts)
    try:
        back.update(status=Job.Status.QUEUED, enqueued_at=timezone.now())
    except DatabaseError:
        close_old_connections()
        try:
            back.update(status=Job.Status.QUEUED, enqueued_at=timezone.now())
        except DatabaseError:
            # Still down: the retry takes the job back from this attempt all the same.
            close_old_connections()
            logger.warning("job_requeue_failed", job_id=str(job.id), attempts=job.attempts)


def _process(job: Job) -> None:
    try:
        with default_storage.open(job.image.original_path, "rb") as stored:
            data = stored.read()
    except FileNotFoundError:
        raise PermanentJobError("IMAGE_MISSING", "The image's file is gone.") from None
    except STORAGE_ERRORS as exc:
        message = f"the storage could not be read ({type(exc).__name__})"
        raise TransientJobError(message, code=storage_error_code(exc)) from exc
    if not _claim_held(job):
        raise ClaimLost()
    try:
        if job.kind == Job.Kind.UPSCALE:
            _upscale(job, data)
        else:
            _classify(job, data)
    except DomainError as exc:
        raise PermanentJobError(exc.code, exc.detail) from exc
    except ProviderError as exc:
        if exc.permanent:
            raise PermanentJobError("CLASSIFICATION_FAILED", str(exc)) from exc
        raise TransientJobError(str(exc)) from exc
    except STORAGE_ERRORS as exc:
        message = f"the storage could not be written ({type(exc).__name__})"
        raise TransientJobError(message, code=storage_error_code(exc)) from exc
    except DatabaseError as exc:
        raise TransientJobError(f"the database failed ({type(exc).__name__})") from exc


def _claim_held(job: Job, *, lock: bool = False) -> bool:
    """Tell whether this attempt still holds the job; `lock` holds the row until commit."""
    held = Job.objects.filter(id=job.id, status=Job.Status.RUNNING, attempts=job.attempts)
    return (held.select_for_update() if lock else held).exists()


@contextmanager
def _result_writing(job: Job) -> Iterator[None]:
    """Open the transaction that writes the job's result, if this attempt still holds the job."""
    with transaction.atomic():
        if not _claim_held(job, lock=True):
            raise ClaimLost()
        yield


def _original_sanitize(image: Image, data: bytes) -> PILImage.Image:
    """Replace the stored original with its upright copy without metadata; return the decoded."""
    decoded = image_decode(data)
    # What is kept and served: upright, without metadata (GPS included).
    file_write(name=image.original_path, data=image_sanitize(decoded))
    width, height = decoded.size
    if _turned(decoded):
        width, height = height, width
    Image.objects.filter(id=image.id).update(width=width, height=height)
    decoded.seek(0)
    return decoded


def _turned(decoded: PILImage.Image) -> bool:
    """Tell whether the EXIF orientation swaps the picture's width and height."""
    return decoded.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)


def _classify(job: Job, data: bytes) -> None:
    image = job.image
    decoded = _original_sanitize(image, data)
    thumbnail = storage_path_for(
        organization_id=image.organization_id,
        image_id=image.id,
        variant="thumbnail",
        extension="jpg",
    )
    file_write(name=thumbnail, data=thumbnail_make(data))
    # The model sees the upright centre square, reduced: never a second full-size copy.
    result = classify_with_failover([model_input(decoded)])[0]
    with _result_writing(job):
        stored = classification_record(
            organization_id=image.organization_id,
            principal_ref=image.uploaded_by,
            principal_display=image.uploaded_by_display,
            result=result,
            upload_sha256=image.sha256,
            image_id=image.id,
            job_id=job.id,
        )
        classification = {"classification_id": str(stored.id), **result.to_dict()}
        Image.objects.filter(id=image.id).update(
            thumbnail_path=thumbnail,
            classification=classification,
            label=classification["top_label"],
            status=Image.Status.READY,
        )
        _finish(
            job, Job.Status.SUCCEEDED, result={"classification": classification, "thumbnail": True}
        )


def _upscale(job: Job, data: bytes) -> None:
    source, scale = job.image, int(job.scale or 2)
    _original_sanitize(source, data)
    larger = image_upscale(data, factor=scale)
    decoded = image_decode(larger)
    result_id = uuid.uuid4()
    extension = source.original_path.rsplit(".", 1)[-1]
    path = storage_path_for(
        organization_id=source.organization_id,
        image_id=result_id,
        variant="original",
        extension=extension,
    )
    stem = source.filename.rsplit(".", 1)[0]
    file_write(name=path, data=larger)
    try:
        with _result_writing(job):
            Image.objects.create(
                id=result_id,
                organization_id=source.organization_id,
                uploaded_by=source.uploaded_by,
                uploaded_by_display=source.uploaded_by_display,
                filename=f"{stem}@{scale}x.{extension}",
                bucket=source.bucket,
                content_type=format_of(decoded).content_type,
                size_bytes=len(larger),
                width=decoded.width,
                height=decoded.height,
                sha256=hashlib.sha256(larger).hexdigest(),
                original_path=path,
                status=Image.Status.READY,
            )
            Image.objects.filter(id=source.id).update(status=Image.Status.READY)
            _finish(
                job,
                Job.Status.SUCCEEDED,
                result={
                    "image_id": str(result_id),
                    "width": decoded.width,
                    "height": decoded.height,
                    "scale": scale,
                },
            )
    except BaseException:
        file_discard(path)  # no image was recorded for it: nothing is kept
        raise


def _finish(
    job: Job,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    code, message = error or ("", "")
    with transaction.atomic():
        # Only this attempt's claim may finish the job.
        updated = Job.objects.filter(
            id=job.id, status=Job.Status.RUNNING, attempts=job.attempts
        ).update(
            status=status,
            finished_at=timezone.now(),
            result=result,
            error_code=code,
            error_message=message,
        )
        if not updated:
            _discarded(job, "finish_unmatched")
            return
        if status == Job.Status.FAILED:
            Image.objects.filter(id=job.image_id, status=Image.Status.PROCESSING).update(
                status=Image.Status.FAILED
            )
        # The outcome event, in the same transaction: it is sent if and only if this commits.
        webhook_event_emit(
            organization_id=job.organization_id,
            type=f"job.{status}",
            data=job_document(Job.objects.get(id=job.id)),
            endpoint_id=job_callback_endpoint(job_id=job.id),
        )
    metrics.JOBS_COMPLETED.labels(kind=job.kind, status=status).inc()
    logger.info(
        "job_finished",
        job_id=str(job.id),
        kind=job.kind,
        status=status,
        attempts=job.attempts,
        error_code=code or None,
    )


def _discarded(job: Job, reason: str) -> None:
    """Record that this attempt's outcome was dropped because another attempt has the job."""
    metrics.JOB_OUTCOMES_DISCARDED.labels(kind=job.kind, reason=reason).inc()
    logger.warning(
        "job_outcome_discarded",
        job_id=str(job.id),
        kind=job.kind,
        reason=reason,
        attempts=job.attempts,
    )


def jobs_requeue_stuck() -> int:
    """Hand again the jobs queued or running for too long; return how many were handed."""
    now = timezone.now()
    queued_before = now - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT)
    running_before = now - timedelta(seconds=settings.JOB_RUNNING_TIMEOUT)
    stale = Q(status=Job.Status.QUEUED, enqueued_at__lt=queued_before) | Q(
        status=Job.Status.RUNNING, started_at__lt=running_before
    )
    stuck = Job.objects.filter(stale).values_list("id", flat=True)[:1000]
    handed = 0
    for job_id in stuck:
        # Still stale at the moment of the update: a job a worker has claimed since is left.
        taken = Job.objects.filter(Q(id=job_id) & stale).update(
            status=Job.Status.QUEUED, enqueued_at=now
        )
        if taken and job_enqueue(job_id):
            handed += 1
    queue = settings.JOB_QUEUE or settings.CELERY_TASK_DEFAULT_QUEUE
    metrics.QUEUE_DEPTH.labels(queue=queue).set(
        Job.objects.filter(status=Job.Status.QUEUED).count()
    )
    if handed:
        logger.warning("jobs_requeued", count=handed)
    return handed
