"""What the classifier API reads and answers."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from classifier.models import Classification, VehicleReport

VEHICLE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# A report's free-form data, serialized as JSON.
MAX_REPORT_DATA_BYTES = 16 * 1024


class ClassifySerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=False)


class ClassifyBatchSerializer(serializers.Serializer[Any]):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True))


class PredictionSerializer(serializers.Serializer[Any]):
    label = serializers.CharField()  # type: ignore[assignment]
    confidence = serializers.FloatField()


class ImagenetPredictionSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]
    confidence = serializers.FloatField()


class ClassificationSerializer(serializers.ModelSerializer[Classification]):
    classification_id = serializers.UUIDField(source="id")
    predictions = serializers.SerializerMethodField()
    imagenet = serializers.SerializerMethodField()
    processing_time_ms = serializers.SerializerMethodField()

    class Meta:
        model = Classification
        fields = [
            "classification_id",
            "is_vehicle",
            "top_label",
            "predictions",
            "vehicle_probability",
            "imagenet",
            "provider",
            "model",
            "processing_time_ms",
            "image_id",
            "upload_sha256",
            "created_at",
        ]

    @staticmethod
    def get_predictions(classification: Classification) -> list[dict[str, Any]]:
        categories: list[dict[str, Any]] = classification.predictions.get("categories", [])
        return categories

    @staticmethod
    def get_imagenet(classification: Classification) -> list[dict[str, Any]]:
        imagenet: list[dict[str, Any]] = classification.predictions.get("imagenet", [])
        return imagenet

    @staticmethod
    def get_processing_time_ms(classification: Classification) -> float:
        return round(classification.processing_time_ms, 2)


class BatchErrorSerializer(serializers.Serializer[Any]):
    status = serializers.IntegerField()
    code = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.CharField()


class BatchResultSerializer(serializers.Serializer[Any]):
    """One file of a batch: `error` is null for a classification, set for a refused file."""

    index = serializers.IntegerField()
    filename = serializers.CharField()
    classification_id = serializers.UUIDField(required=False)
    is_vehicle = serializers.BooleanField(required=False)
    top_label = serializers.CharField(required=False)
    predictions = PredictionSerializer(many=True, required=False)
    error = BatchErrorSerializer(allow_null=True)


class BatchAnswerSerializer(serializers.Serializer[Any]):
    results = BatchResultSerializer(many=True)
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    total_time_ms = serializers.FloatField()


class ReportCreateSerializer(serializers.Serializer[Any]):
    vehicle_id = serializers.RegexField(VEHICLE_ID_PATTERN)
    classification_id = serializers.UUIDField(required=False, allow_null=True)
    image_id = serializers.UUIDField(required=False, allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # A field named `data` declared on the class would hide the serializer's own `data`.
        fields = super().get_fields()
        fields["data"] = serializers.DictField(required=False, default=dict)
        return fields

    def validate_data(self, data: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(data).encode()) > MAX_REPORT_DATA_BYTES:
            raise serializers.ValidationError(
                f"The report's data must be at most {MAX_REPORT_DATA_BYTES:,} bytes of JSON."
            )
        return data


class VehicleReportSerializer(serializers.ModelSerializer[VehicleReport]):
    classification = ClassificationSerializer(allow_null=True)
    reported_by = serializers.CharField(source="reported_by_display")

    class Meta:
        model = VehicleReport
        fields = [
            "id",
            "vehicle_id",
            "classification_id",
            "image_id",
            "data",
            "reported_by",
            "created_at",
            "classification",
        ]


class ModelInfoSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    version = serializers.CharField()
    provider = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    input_size = serializers.ListField(child=serializers.IntegerField())
    sha256 = serializers.CharField()


class ModelsMetadataSerializer(serializers.Serializer[Any]):
    models = ModelInfoSerializer(many=True)


class ProviderStatusSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    consecutive_failures = serializers.IntegerField()
    consecutive_successes = serializers.IntegerField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    avg_response_ms = serializers.FloatField(allow_null=True)
    requests = serializers.IntegerField()
    failures = serializers.IntegerField()
    ejected = serializers.BooleanField()
    ejected_until = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class ProvidersSerializer(serializers.Serializer[Any]):
    providers = ProviderStatusSerializer(many=True)
    chain = serializers.ListField(child=serializers.CharField())
