"""What the images API reads and answers."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from images.models import Image, Job

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# What a refused bucket name is told, in the API's answer and beside the upload page's field.
BUCKET_RULE = (
    "A bucket name is 1 to 64 lowercase letters, digits, '-' and '_', "
    "starting with a letter or a digit, such as default or site-42."
)
BUCKET_ERRORS: dict[str, Any] = {
    "invalid": BUCKET_RULE,
    "blank": BUCKET_RULE,
    "max_length": BUCKET_RULE,
}


class UploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=False)
    bucket = serializers.RegexField(
        BUCKET_PATTERN, required=False, default="default", error_messages=BUCKET_ERRORS
    )
    webhook_endpoint = serializers.UUIDField(
        required=False,
        help_text="An enabled webhook endpoint of the organization that receives this job's "
        "outcome (job.succeeded or job.failed), subscribed to it or not.",
    )


class UpscaleSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=False)
    scale = serializers.ChoiceField(choices=[2, 4])


class UploadAnswerSerializer(serializers.Serializer[Any]):
    job_id = serializers.UUIDField()
    image_id = serializers.UUIDField()
    status_url = serializers.CharField()
    message = serializers.CharField()


class ImageFiltersSerializer(serializers.Serializer[Any]):
    bucket = serializers.RegexField(BUCKET_PATTERN, required=False)
    label = serializers.RegexField(r"^[a-z_]{1,32}$", required=False)  # type: ignore[assignment]
    status = serializers.ChoiceField(choices=Image.Status.choices, required=False)
    uploaded_after = serializers.DateTimeField(required=False)
    uploaded_before = serializers.DateTimeField(required=False)


class JobSerializer(serializers.ModelSerializer[Job]):
    error = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "image_id",
            "kind",
            "status",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "result",
            "error",
        ]

    def get_error(self, job: Job) -> dict[str, str] | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}


class ImageSerializer(serializers.ModelSerializer[Image]):
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    uploaded_by = serializers.CharField(source="uploaded_by_display")

    class Meta:
        model = Image
        fields = [
            "id",
            "filename",
            "bucket",
            "content_type",
            "size_bytes",
            "width",
            "height",
            "sha256",
            "uploaded_by",
            "created_at",
            "status",
            "classification",
            "file_url",
            "thumbnail_url",
        ]

    def get_file_url(self, image: Image) -> str:
        return reverse("image-file", args=[image.id])

    def get_thumbnail_url(self, image: Image) -> str | None:
        return reverse("image-thumbnail", args=[image.id]) if image.thumbnail_path else None
