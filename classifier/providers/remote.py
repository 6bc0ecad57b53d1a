"""The `remote` provider: another deployment's classify-batch API, over HTTP."""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Sequence
from typing import Any

import httpx
import structlog
from django.conf import settings
from PIL import Image

from classifier.categories import (
    NOT_VEHICLE,
    Classification,
    ImagenetPrediction,
    Prediction,
)
from classifier.errors import ProviderError
from classifier.preprocessing import (
    decode_reduced,
    exif_orientation,
    rgb_image,
    short_side_resized,
    upright,
)
from classifier.providers.base import Provider
from config.request_context import current_request_id

logger = structlog.get_logger("vantage.classifier")

CLASSIFY_BATCH_PATH = "/api/v1/vehicle/classify-batch"
MODELS_PATH = "/api/v1/models/metadata"
# The remote API takes at most this many files per request.
MAX_FILES = 32
# Twice what the model looks at: sharp enough for any preprocessing there, small to send.
UPLOAD_SHORT_SIDE = 512
UPLOAD_JPEG_QUALITY = 90
# Worth asking again later: the server was busy, overloaded or timed out.
TRANSIENT_STATUSES = {408, 425, 429}


@functools.cache
def _client() -> httpx.Client:
    # One pooled client per process: connections to the other deployment are reused.
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=8))


def upload_bytes(image: Image.Image) -> bytes:
    """Return the image, upright, as a JPEG no larger than the remote side needs."""
    # The copy sent carries no EXIF, so it is turned upright here.
    orientation = exif_orientation(image)
    decode_reduced(image, UPLOAD_SHORT_SIDE)
    picture = rgb_image(image)
    if min(picture.size) > UPLOAD_SHORT_SIDE:
        picture = short_side_resized(picture, UPLOAD_SHORT_SIDE)
    buffer = io.BytesIO()
    upright(picture, orientation).save(buffer, format="JPEG", quality=UPLOAD_JPEG_QUALITY)
    return buffer.getvalue()


def _error_for_status(status: int) -> ProviderError:
    transient = status >= 500 or status in TRANSIENT_STATUSES
    return ProviderError(f"The remote classifier answered HTTP {status}.", permanent=not transient)


def _vehicle_probability(item: dict[str, Any], predictions: tuple[Prediction, ...]) -> float:
    if item.get("vehicle_probability") is not None:
        return float(item["vehicle_probability"])
    scores = {prediction.label: prediction.confidence for prediction in predictions}
    if NOT_VEHICLE in scores:
        return 1.0 - scores[NOT_VEHICLE]
    return sum(scores.values())


def classification_from_answer(
    item: dict[str, Any], *, provider: str, processing_time_ms: float
) -> Classification:
    """Return the Classification one result of a classify-batch answer describes."""
    if not isinstance(item, dict) or "is_vehicle" not in item:
        error = item.get("error", item) if isinstance(item, dict) else item
        raise ProviderError(f"The remote classifier refused an image: {error}", permanent=True)
    predictions = tuple(
        Prediction(str(entry["label"]), float(entry["confidence"]))
        for entry in item.get("predictions") or ()
    )
    return Classification(
        is_vehicle=bool(item["is_vehicle"]),
        top_label=str(item["top_label"]),
        predictions=predictions,
        vehicle_probability=_vehicle_probability(item, predictions),
        imagenet=tuple(
            ImagenetPrediction(int(entry["index"]), str(entry["label"]), float(entry["confidence"]))
            for entry in item.get("imagenet") or ()
        ),
        provider=provider,
        model=str(item.get("model", "")),
        processing_time_ms=processing_time_ms,
    )


class RemoteProvider(Provider):
    """Classify with another deployment of this product, authenticated by its service token."""

    name = "remote"

    def _base_url(self) -> str:
        url = str(settings.CLASSIFIER_REMOTE_URL).rstrip("/")
        if not url:
            raise ProviderError("CLASSIFIER_REMOTE_URL is not set.", permanent=True)
        return url

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {settings.CLASSIFIER_REMOTE_TOKEN}",
            "X-Request-ID": current_request_id() or "",
        }

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        """Return one classification per image, sending at most MAX_FILES per request."""
        results: list[Classification] = []
        for start in range(0, len(images), MAX_FILES):
            results.extend(self._classify_batch(images[start : start + MAX_FILES]))
        return results

    def _classify_batch(self, images: Sequence[Image.Image]) -> list[Classification]:
        started = time.perf_counter()
        files = [
            ("files", (f"image-{index}.jpg", upload_bytes(image), "image/jpeg"))
            for index, image in enumerate(images)
        ]
        body = self._post(files)
        share_ms = (time.perf_counter() - started) * 1000 / len(images)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(images):
            raise ProviderError(
                "The remote classifier's answer does not hold one result per image.",
                permanent=False,
            )
        try:
            return [
                classification_from_answer(item, provider=self.name, processing_time_ms=share_ms)
                for item in results
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(
                f"The remote classifier's answer is malformed: {exc!r}", permanent=False
            ) from exc

    def _post(self, files: list[tuple[str, tuple[str, bytes, str]]]) -> Any:
        try:
            response = _client().post(
                self._base_url() + CLASSIFY_BATCH_PATH,
                files=files,
                headers=self._headers(),
                timeout=settings.CLASSIFIER_REMOTE_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"The remote classifier is unreachable: {type(exc).__name__}: {exc}",
                permanent=False,
            ) from exc
        if response.status_code != 200:
            raise _error_for_status(response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                "The remote classifier's answer is not JSON.", permanent=False
            ) from exc

    def models(self) -> list[dict[str, Any]]:
        """Return the models the other deployment reports, or none while it cannot be asked."""
        try:
            response = _client().get(
                self._base_url() + MODELS_PATH,
                headers=self._headers(),
                timeout=settings.CLASSIFIER_REMOTE_TIMEOUT,
            )
            response.raise_for_status()
            entries = response.json()["models"]
            return [{**entry, "provider": self.name} for entry in entries]
        except (ProviderError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            logger.warning("classifier_remote_models_unavailable", error=str(exc)[:200])
            return []
