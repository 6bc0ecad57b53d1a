"""The images API."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required
from accounts.ratelimits.limits import RateLimitRule
from accounts.ratelimits.throttling import cache_prefetched
from accounts.services.quotas import uploads_today, used_today_key
from config.errors import InvalidInput, NotFound, ServiceUnavailable
from config.pagination import PageNumberPagination, paginated
from config.parsers import MultiPartParser
from images.api.serializers import (
    ImageFiltersSerializer,
    ImageSerializer,
    JobSerializer,
    UploadAnswerSerializer,
    UploadSerializer,
    UpscaleSerializer,
)
from images.models import Job
from images.selectors import image_get, images_for, job_get
from images.services import image_delete, image_upload
from images.storage_errors import STORAGE_ERRORS
from images.uploads import UploadSizeLimitMixin

logger = structlog.get_logger("vantage.images")

MAX_IDEMPOTENCY_KEY = 255
# A gallery page shows dozens of thumbnails and a client polls each job it waits for:
# these reads have windows of their own, ten times the tier's requests per minute.
IMAGE_FILES_RATE_LIMIT = RateLimitRule(group="image-files", share=10.0)
JOB_STATUS_RATE_LIMIT = RateLimitRule(group="job-status", share=10.0)


class DimensionsSerializer(serializers.Serializer[Any]):
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ImageLimitsSerializer(serializers.Serializer[Any]):
    tier = serializers.CharField()
    rate_limit_per_minute = serializers.IntegerField()
    max_file_size_bytes = serializers.IntegerField()
    daily_limit = serializers.IntegerField()
    used_today = serializers.IntegerField(help_text="Uploads since 00:00 UTC.")
    remaining_today = serializers.IntegerField()
    min_dimensions = DimensionsSerializer()
    max_dimensions = DimensionsSerializer()
    allowed_types = serializers.ListField(child=serializers.CharField())


class ImageLimitsApi(APIView):
    """Your organization's tier, its limits, and today's uploads against its quota."""

    required_permission = ANY_PRINCIPAL

    @staticmethod
    def cache_prefetch(organization_id: str) -> list[str]:
        """Today's upload count, read in the credential's round trip."""
        return [used_today_key(organization_id)]

    @extend_schema(responses=ImageLimitsSerializer, tags=["images"])
    def get(self, request: Request) -> Response:
        principal = principal_required(request)
        limits = principal.limits
        used = uploads_today(
            organization_id=principal.organization_id, prefetched=cache_prefetched(request)
        )
        smallest, largest = settings.IMAGE_MIN_DIMENSION, settings.IMAGE_MAX_DIMENSION
        body = {
            "tier": principal.organization_tier,
            "rate_limit_per_minute": limits["requests_per_minute"],
            "max_file_size_bytes": limits["max_file_size_bytes"],
            "daily_limit": limits["uploads_per_day"],
            "used_today": used,
            "remaining_today": max(0, limits["uploads_per_day"] - used),
            "min_dimensions": {"width": smallest, "height": smallest},
            "max_dimensions": {"width": largest, "height": largest},
            "allowed_types": list(settings.IMAGE_ALLOWED_TYPES),
        }
        # Plain values already: the serializer describes the answer in the schema.
        return Response(body)


def _upload_answer(request: Request, job: Job, *, replayed: bool) -> Response:
    status_url = reverse("image-job", args=[job.id])
    message = (
        "The first answer to this Idempotency-Key."
        if replayed
        else "Accepted; follow status_url for the job's progress."
    )
    body = {
        "job_id": job.id,
        "image_id": job.image_id,
        "status_url": status_url,
        "message": message,
    }
    return Response(UploadAnswerSerializer(body).data, status=202, headers={"Location": status_url})


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.",
            field="Idempotency-Key",
        )
    return key


class ImageUploadApi(UploadSizeLimitMixin, APIView):
    """Upload an image; a job validates nothing more, it thumbnails and classifies it."""

    required_permission = "image:upload"
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=UploadSerializer, responses={202: UploadAnswerSerializer}, tags=["images"]
    )
    def post(self, request: Request) -> Response:
        data = UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        answer = image_upload(
            principal=principal_required(request),
            file=upload,
            filename=upload.name,
            bucket=data.validated_data["bucket"],
            idempotency_key=_idempotency_key(request),
            webhook_endpoint_id=data.validated_data.get("webhook_endpoint"),
        )
        return _upload_answer(request, answer.job, replayed=answer.replayed)


class ImageUpscaleApi(UploadSizeLimitMixin, APIView):
    """Upload an image to enlarge 2x or 4x (Lanczos); the job's result names the larger image."""

    required_permission = "image:upload"
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=UpscaleSerializer, responses={202: UploadAnswerSerializer}, tags=["images"]
    )
    def post(self, request: Request) -> Response:
        data = UpscaleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        answer = image_upload(
            principal=principal_required(request),
            file=upload,
            filename=upload.name,
            scale=int(data.validated_data["scale"]),
            idempotency_key=_idempotency_key(request),
        )
        return _upload_answer(request, answer.job, replayed=answer.replayed)


class JobDetailApi(APIView):
    """A job's status; `Retry-After` says when to ask again while it is not finished."""

    required_permission = "image:read"
    rate_limit = JOB_STATUS_RATE_LIMIT

    @extend_schema(responses=JobSerializer, tags=["images"])
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        principal = principal_required(request)
        job = job_get(organization_id=principal.organization_id, job_id=job_id)
        headers = {} if job.finished else {"Retry-After": "1"}
        return Response(JobSerializer(job).data, headers=headers)


class ImageListApi(APIView):
    """The organization's images, newest first, with filters."""

    required_permission = "image:read"

    @extend_schema(
        parameters=[ImageFiltersSerializer],
        responses=paginated(ImageSerializer),
        tags=["images"],
    )
    def get(self, request: Request) -> Response:
        filters = ImageFiltersSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        principal = principal_required(request)
        images = images_for(
            organization_id=principal.organization_id, filters=filters.validated_data
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(images, request, view=self) or []
        return paginator.get_paginated_response(ImageSerializer(page, many=True).data)


class ImageDetailApi(APIView):
    """One image, or its deletion (`image:delete`)."""

    required_permission = "image:read"

    @extend_schema(responses=ImageSerializer, tags=["images"])
    def get(self, request: Request, image_id: uuid.UUID) -> Response:
        principal = principal_required(request)
        image = image_get(organization_id=principal.organization_id, image_id=image_id)
        return Response(ImageSerializer(image).data)


class ImageDeleteApi(APIView):
    """One image, or its deletion (`image:delete`)."""

    required_permission = "image:delete"

    @extend_schema(responses={204: None}, tags=["images"])
    def delete(self, request: Request, image_id: uuid.UUID) -> Response:
        principal = principal_required(request)
        image_delete(image=image_get(organization_id=principal.organization_id, image_id=image_id))
        return Response(status=204)


def _file_response(path: str, content_type: str, filename: str, *, attachment: bool) -> Any:
    try:
        stored = default_storage.open(path, "rb")
    except FileNotFoundError:
        raise NotFound("The image's file is not available.") from None
    except STORAGE_ERRORS as exc:
        logger.warning("image_file_unreadable", path=path, error_type=type(exc).__name__)
        raise ServiceUnavailable(
            "The image storage cannot be read now; try again shortly.",
            headers={"Retry-After": "30"},
        ) from exc
    response = FileResponse(
        stored, content_type=content_type, as_attachment=attachment, filename=filename
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


class ImageFileApi(APIView):
    """The stored original (upright, without metadata once processed), as an attachment."""

    required_permission = "image:read"
    rate_limit = IMAGE_FILES_RATE_LIMIT

    @extend_schema(
        responses={(200, content_type): bytes for content_type in settings.IMAGE_ALLOWED_TYPES},
        tags=["images"],
    )
    def get(self, request: Request, image_id: uuid.UUID) -> Any:
        principal = principal_required(request)
        image = image_get(organization_id=principal.organization_id, image_id=image_id)
        return _file_response(
            image.original_path, image.content_type, image.filename, attachment=True
        )


class ImageThumbnailApi(APIView):
    """The 256-pixel JPEG thumbnail, once the job has made it."""

    required_permission = "image:read"
    rate_limit = IMAGE_FILES_RATE_LIMIT

    @extend_schema(responses={(200, "image/jpeg"): bytes}, tags=["images"])
    def get(self, request: Request, image_id: uuid.UUID) -> Any:
        principal = principal_required(request)
        image = image_get(organization_id=principal.organization_id, image_id=image_id)
        if not image.thumbnail_path:
            raise NotFound("The thumbnail is not made yet; see the image's job.")
        stem = image.filename.rsplit(".", 1)[0]
        return _file_response(
            image.thumbnail_path, "image/jpeg", f"{stem}-thumbnail.jpg", attachment=False
        )
