"""Classify images on request, keep every classification, and file vehicle reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import structlog
from django.db import transaction
from PIL import Image as PillowImage

from accounts.identity.principal import Principal
from audit.services import audit_record
from classifier import categories
from classifier.chain import classify_with_failover
from classifier.errors import ClassifierUnavailable, ProviderError
from classifier.models import Classification, VehicleReport
from classifier.preprocessing import model_input
from config.errors import DomainError, InvalidInput
from config.ids import Id
from images.validation import decoding, format_of, full_size_decoding, image_open, upload_checked

logger = structlog.get_logger("vantage.classifier")

MAX_BATCH_FILES = 32


@dataclass(frozen=True)
class BatchOutcome:
    """One file of a batch: its classification, or the error that refused it."""

    filename: str
    classification: Classification | None = None
    error: DomainError | None = None


def _audit(
    principal: Principal, action: str, resource_type: str, resource_id: object, **details: Any
) -> None:
    """Record a classifier call in the principal's organization's audit chain."""
    audit_record(
        action=action,
        organization_id=principal.organization_id,
        organization_display=principal.organization_slug,
        resource_type=resource_type,
        resource_id=str(resource_id),
        details=details,
    )


def classification_record(
    *,
    organization_id: Id,
    principal_ref: str,
    principal_display: str,
    result: categories.Classification,
    upload_sha256: str,
    image_id: Id | None = None,
    job_id: Id | None = None,
) -> Classification:
    """Keep what a provider concluded; for a job (`job_id`), once however often the job runs."""
    fields = {
        "organization_id": organization_id,
        "principal": principal_ref,
        "principal_display": principal_display,
        "image_id": image_id,
        "upload_sha256": upload_sha256,
        "is_vehicle": result.is_vehicle,
        "top_label": result.top_label,
        "predictions": {
            "categories": [prediction.to_dict() for prediction in result.predictions],
            "imagenet": [prediction.to_dict() for prediction in result.imagenet],
        },
        "vehicle_probability": result.vehicle_probability,
        "provider": result.provider,
        "model": result.model,
        "processing_time_ms": result.processing_time_ms,
    }
    if job_id is not None:
        stored, _ = Classification.objects.update_or_create(job_id=job_id, defaults=fields)
        return stored
    return Classification.objects.create(**fields)


def _checked_input(
    *, principal: Principal, file: IO[bytes], filename: str
) -> tuple[str, PillowImage.Image]:
    """Return an upload's SHA-256 and the small picture the providers classify, or refuse it.

    The upload's bytes and its decoded pixels are released on return, so a batch
    holds one file's at a time.
    """
    upload = upload_checked(principal=principal, file=file, filename=filename)
    image = image_open(upload.data)
    with full_size_decoding(), decoding(label=format_of(image).label):
        try:
            return upload.sha256, model_input(image)
        finally:
            image.close()


def _classified(inputs: Sequence[PillowImage.Image]) -> list[categories.Classification]:
    """Return one classification per picture from the provider chain, or raise 503."""
    try:
        return classify_with_failover(inputs)
    except ProviderError as exc:
        logger.warning("classification_unavailable", error=exc.message[:200])
        raise ClassifierUnavailable() from exc


def vehicle_classify(*, principal: Principal, file: IO[bytes], filename: str) -> Classification:
    """Classify one uploaded file now and keep the classification (not the file)."""
    sha256, picture = _checked_input(principal=principal, file=file, filename=filename)
    result = _classified([picture])[0]
    with transaction.atomic():
        stored = classification_record(
            organization_id=principal.organization_id,
            principal_ref=principal.ref,
            principal_display=principal.display,
            result=result,
            upload_sha256=sha256,
        )
        _audit(
            principal,
            "vehicle.classified",
            "classification",
            stored.id,
            is_vehicle=stored.is_vehicle,
            top_label=stored.top_label,
            provider=stored.provider,
        )
    return stored


def vehicle_classify_batch(
    *, principal: Principal, files: Sequence[tuple[IO[bytes], str]]
) -> list[BatchOutcome]:
    """Classify up to MAX_BATCH_FILES files in one pass of the chain.

    Each file is validated on its own; one refused file does not fail the others.
    """
    if not 1 <= len(files) <= MAX_BATCH_FILES:
        raise InvalidInput(
            f"Send 1 to {MAX_BATCH_FILES} files in `files`; this request has {len(files)}.",
            field="files",
        )
    outcomes: list[BatchOutcome | None] = []
    accepted: list[tuple[int, str, PillowImage.Image]] = []
    for index, (file, filename) in enumerate(files):
        try:
            accepted.append(
                (index, *_checked_input(principal=principal, file=file, filename=filename))
            )
        except DomainError as exc:
            outcomes.append(BatchOutcome(filename=filename, error=exc))
            continue
        outcomes.append(None)
    results = _classified([picture for _, _, picture in accepted]) if accepted else []
    with transaction.atomic():
        for (index, sha256, _), result in zip(accepted, results, strict=True):
            stored = classification_record(
                organization_id=principal.organization_id,
                principal_ref=principal.ref,
                principal_display=principal.display,
                result=result,
                upload_sha256=sha256,
            )
            outcomes[index] = BatchOutcome(filename=files[index][1], classification=stored)
        _batch_audit(principal, outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _batch_audit(principal: Principal, outcomes: Sequence[BatchOutcome | None]) -> None:
    """Record a batch as one event naming its count, however many files it held."""
    stored = [o.classification for o in outcomes if o is not None and o.classification]
    _audit(
        principal,
        "vehicle.batch_classified",
        "classification_batch",
        "",
        count=len(outcomes),
        classified=len(stored),
        refused=len(outcomes) - len(stored),
        classification_ids=[str(c.id) for c in stored],
    )


def vehicle_report_create(
    *,
    principal: Principal,
    vehicle_id: str,
    data: dict[str, Any],
    classification: Classification | None = None,
    image_id: Id | None = None,
) -> VehicleReport:
    """File a report about a vehicle; what it cites belongs to the principal's organization."""
    with transaction.atomic():
        report = VehicleReport.objects.create(
            organization_id=principal.organization_id,
            vehicle_id=vehicle_id,
            classification=classification,
            image_id=image_id,
            data=data,
            reported_by=principal.ref,
            reported_by_display=principal.display,
        )
        _audit(
            principal,
            "vehicle.report_created",
            "vehicle_report",
            report.id,
            vehicle_id=vehicle_id,
            classification_id=str(classification.id) if classification else None,
            image_id=str(image_id) if image_id else None,
        )
    return report


def vehicle_reports_read(*, principal: Principal, vehicle_id: str, count: int) -> None:
    """Record that the principal read the organization's reports about a vehicle."""
    _audit(principal, "vehicle.reports_read", "vehicle", vehicle_id, count=count)
