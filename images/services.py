"""Uploading images (idempotently, within the quota) and deleting them."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.identity.principal import Principal
from accounts.services.quotas import upload_quota_consume
from audit.services import audit_record
from config.errors import DomainError, InvalidInput
from config.request_context import current_request_id
from images import metrics
from images.documents import image_document
from images.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InsufficientStorage,
    StorageUnavailable,
    UpscaleTooLarge,
)
from images.models import IdempotentUpload, Image, Job
from images.queue import job_enqueue
from images.storage_errors import STORAGE_ERRORS, storage_error_code, storage_full
from images.stored_files import file_discard, file_write
from images.validation import ValidatedUpload, storage_path_for, upload_checked
from webhooks.models import WebhookEndpoint
from webhooks.services.callbacks import callback_endpoint_checked, job_callback_register
from webhooks.services.events import webhook_event_emit

logger = structlog.get_logger("vantage.images")

IDEMPOTENCY_TTL = timedelta(hours=24)
# How long a request holds its Idempotency-Key while it is being answered.
IDEMPOTENCY_LOCK_SECONDS = 60
UPSCALE_FACTORS = (2, 4)


@dataclass(frozen=True)
class UploadAnswer:
    job: Job
    # True when this is the first answer to the same Idempotency-Key, given again.
    replayed: bool


def image_upload(
    *,
    principal: Principal,
    file: IO[bytes],
    filename: str,
    bucket: str = "default",
    idempotency_key: str | None = None,
    scale: int | None = None,
    webhook_endpoint_id: uuid.UUID | None = None,
) -> UploadAnswer:
    """Validate and store an upload and queue its job (upscale when `scale` is given); the job's
    outcome goes to the webhook endpoint `webhook_endpoint_id` too, when one is named."""
    callback = None
    if webhook_endpoint_id is not None:
        callback = callback_endpoint_checked(
            organization_id=principal.organization_id, endpoint_id=webhook_endpoint_id
        )
    upload = upload_checked(principal=principal, file=file, filename=filename)
    if scale is not None:
        try:
            _upscale_check(upload, scale)
        except DomainError as exc:
            metrics.VALIDATION_REJECTIONS.labels(code=exc.code).inc()
            raise
    if not idempotency_key:
        return UploadAnswer(
            _image_create(principal, upload, bucket, scale, None, callback=callback), False
        )
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    lock = f"images:idem:{principal.ref}:{digest}"
    if not _lock_take(lock):
        raise IdempotencyKeyInFlight()
    try:
        first = _first_answer(principal, digest, upload.sha256)
        if first is not None:
            return UploadAnswer(first, True)
        try:
            job = _image_create(principal, upload, bucket, scale, digest, callback=callback)
            return UploadAnswer(job, False)
        except IntegrityError:
            # Another process answered the same key meanwhile (the lock was lost).
            first = _first_answer(principal, digest, upload.sha256)
            if first is None:
                raise IdempotencyKeyInFlight() from None
            return UploadAnswer(first, True)
    finally:
        _lock_release(lock)


def _upscale_check(upload: ValidatedUpload, scale: int) -> None:
    if scale not in UPSCALE_FACTORS:
        raise InvalidInput("The scale must be 2 or 4.", field="scale")
    maximum = settings.IMAGE_MAX_DIMENSION
    if max(upload.width, upload.height) * scale > maximum:
        raise UpscaleTooLarge(
            width=upload.width, height=upload.height, factor=scale, maximum=maximum
        )


def _lock_take(key: str) -> bool:
    try:
        return bool(cache.add(key, 1, IDEMPOTENCY_LOCK_SECONDS))
    except Exception:
        # Without the cache, the database's unique key still allows one job only.
        logger.warning("idempotency_lock_unavailable")
        return True


def _lock_release(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:
        logger.warning("idempotency_lock_unavailable")


def _first_answer(principal: Principal, digest: str, sha256: str) -> Job | None:
    """Return the job first answered for this key, None if there is none (or it expired)."""
    record = (
        IdempotentUpload.objects.select_related("job")
        .filter(principal=principal.ref, key_digest=digest)
        .first()
    )
    if record is None:
        return None
    if record.created_at < timezone.now() - IDEMPOTENCY_TTL:
        record.delete()
        return None
    if record.file_sha256 != sha256:
        raise IdempotencyKeyReused()
    return record.job


def _image_create(
    principal: Principal,
    upload: ValidatedUpload,
    bucket: str,
    scale: int | None,
    key_digest: str | None,
    *,
    callback: WebhookEndpoint | None,
) -> Job:
    image_id = uuid.uuid4()
    path = storage_path_for(
        organization_id=principal.organization_id,
        image_id=image_id,
        variant="original",
        extension=upload.extension,
    )
    stored = _original_store(path, upload.data)
    try:
        job = _records_create(
            principal,
            upload,
            bucket=bucket,
            scale=scale,
            callback=callback,
            key_digest=key_digest,
            image_id=image_id,
            stored=stored,
        )
    except BaseException:
        file_discard(stored)  # nothing was recorded: nothing is kept
        raise
    metrics.UPLOAD_BYTES.observe(upload.size_bytes)
    return job


def _original_store(path: str, data: bytes) -> str:
    """Store an upload's file whole, or refuse the upload as the storage's fault."""
    try:
        return file_write(name=path, data=data)
    except STORAGE_ERRORS as exc:
        full = storage_full(exc)
        logger.warning("upload_not_stored", error_type=type(exc).__name__, storage_full=full)
        metrics.VALIDATION_REJECTIONS.labels(code=storage_error_code(exc)).inc()
        raise (InsufficientStorage() if full else StorageUnavailable()) from exc


@transaction.atomic
def _records_create(
    principal: Principal,
    upload: ValidatedUpload,
    *,
    bucket: str,
    scale: int | None,
    key_digest: str | None,
    image_id: uuid.UUID,
    stored: str,
    callback: WebhookEndpoint | None,
) -> Job:
    upload_quota_consume(
        organization_id=principal.organization_id,
        limit=principal.limits["uploads_per_day"],
        tier=principal.organization_tier,
    )
    image = Image.objects.create(
        id=image_id,
        organization_id=principal.organization_id,
        uploaded_by=principal.ref,
        uploaded_by_display=principal.display,
        filename=upload.filename,
        bucket=bucket,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        width=upload.width,
        height=upload.height,
        sha256=upload.sha256,
        original_path=stored,
    )
    kind = Job.Kind.UPSCALE if scale else Job.Kind.CLASSIFY
    job = Job.objects.create(
        organization_id=principal.organization_id,
        image=image,
        kind=kind,
        scale=scale,
        request_id=current_request_id() or "",
    )
    if key_digest is not None:
        IdempotentUpload.objects.create(
            principal=principal.ref, key_digest=key_digest, file_sha256=upload.sha256, job=job
        )
    audit_record(
        action="image.uploaded",
        organization_id=principal.organization_id,
        resource_type="image",
        resource_id=str(image.id),
        details={
            "filename": image.filename,
            "size_bytes": image.size_bytes,
            "sha256": image.sha256,
            "job_id": str(job.id),
            "kind": kind,
        },
    )
    if callback is not None:
        job_callback_register(job_id=job.id, endpoint=callback)
    metrics.JOBS_CREATED.labels(kind=kind).inc()
    transaction.on_commit(lambda: job_enqueue(job.id))
    return job


@transaction.atomic
def image_delete(*, image: Image) -> None:
    """Delete the image, its jobs and, once that commits, its stored files."""
    paths = [path for path in (image.original_path, image.thumbnail_path) if path]
    audit_record(
        action="image.deleted",
        organization_id=image.organization_id,
        resource_type="image",
        resource_id=str(image.id),
        details={"filename": image.filename, "sha256": image.sha256},
    )
    webhook_event_emit(
        organization_id=image.organization_id, type="image.deleted", data=image_document(image)
    )
    image.delete()
    transaction.on_commit(lambda: _files_delete(paths))


def _files_delete(paths: list[str]) -> None:
    # The image is gone from the database; a file left behind is only logged.
    for path in paths:
        file_discard(path)
