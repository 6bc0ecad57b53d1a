"""Shared builders of the classifier tests: pictures, classify and report calls, answers."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

REPORT = "/api/v1/vehicle/report"
JEEP = "imagenet_06_609.jpg"
CHAIR = "imagenet_01_559.jpg"  # class 559, a folding chair: not a vehicle
REMOTE_TOKEN = "sk_" + "ab" * 32
CLASSIFY = "/api/v1/vehicle/classify"
BATCH = "/api/v1/vehicle/classify-batch"


def png(size: tuple[int, int] = (64, 48), colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def classify(client: APIClient, data: bytes, name: str = "photo.jpg") -> Any:
    return client.post(CLASSIFY, {"file": SimpleUploadedFile(name, data)}, format="multipart")


def classify_batch(client: APIClient, files: list[tuple[str, bytes]]) -> Any:
    body = {"files": [SimpleUploadedFile(name, data) for name, data in files]}
    return client.post(BATCH, body, format="multipart")


def report(client: APIClient, **body: Any) -> Any:
    return client.post(REPORT, {"vehicle_id": "TRUCK-7", "data": {}, **body}, format="json")


def true_class(photo: Path) -> int:
    """Return the ImageNet class a foolbox photo's name gives as the truth."""
    return int(photo.stem.rsplit("_", 1)[1])


def classification_answer(**overrides: Any) -> dict[str, Any]:
    """Return one result of a classify-batch answer, as another deployment sends it."""
    answer = {
        "classification_id": "6f1c2e0a-9b8d-4c55-8e2f-0123456789ab",
        "is_vehicle": True,
        "top_label": "truck",
        "predictions": [
            {"label": "truck", "confidence": 0.81},
            {"label": "not_vehicle", "confidence": 0.12},
            {"label": "van", "confidence": 0.05},
        ],
        "vehicle_probability": 0.88,
        "imagenet": [{"index": 867, "label": "semi-trailer truck", "confidence": 0.7}],
        "provider": "onnx",
        "model": "efficientnet-lite0@0.1.0",
        "processing_time_ms": 14.2,
    }
    return {**answer, **overrides}
