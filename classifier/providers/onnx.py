"""The `onnx` provider: the exported EfficientNet-Lite0 model, run in this process."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from PIL import Image

from classifier.categories import LABELS, Classification, classification_from_probabilities, softmax
from classifier.errors import ProviderError
from classifier.model import LoadedModel, loaded_model, model_metadata
from classifier.preprocessing import INPUT_SIZE, batch_array
from classifier.providers.base import Provider

# Images inferred in one run. On a CPU larger runs are no faster per image
# (measured on two cores: about the same from 1 to 4, a third slower from 8
# on) while each image adds its activations to the peak memory (a run of 32
# kept the process about 190 MB larger than runs of 2 did).
INFERENCE_BATCH = 2


class OnnxProvider(Provider):
    """Classify with ONNX Runtime on this machine's CPU."""

    name = "onnx"

    def _model(self) -> LoadedModel:
        return loaded_model(settings.CLASSIFIER_MODEL_PATH, settings.CLASSIFIER_ONNX_THREADS)

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        """Return one classification per image, inferring in batches of at most INFERENCE_BATCH."""
        if not images:
            return []
        model = self._model()
        results: list[Classification] = []
        for start in range(0, len(images), INFERENCE_BATCH):
            results.extend(self._classify_batch(model, images[start : start + INFERENCE_BATCH]))
        return results

    def _classify_batch(
        self, model: LoadedModel, images: Sequence[Image.Image]
    ) -> list[Classification]:
        started = time.perf_counter()
        try:
            batch = batch_array(images)
        except (OSError, ValueError) as exc:
            # Validated upstream, yet undecodable here: retrying will not help.
            raise ProviderError(f"An image could not be decoded: {exc}", permanent=True) from exc
        try:
            logits = model.logits(batch)
        except Exception as exc:
            # ONNX Runtime's errors derive from Exception alone (Fail, RuntimeException, ...).
            raise ProviderError(f"Inference failed: {exc}", permanent=False) from exc
        probabilities = softmax(logits)
        share_ms = (time.perf_counter() - started) * 1000 / len(images)
        return [
            classification_from_probabilities(
                row,
                threshold=settings.CLASSIFIER_VEHICLE_THRESHOLD,
                provider=self.name,
                model=model.model_id,
                processing_time_ms=share_ms,
            )
            for row in probabilities
        ]

    def models(self) -> list[dict[str, Any]]:
        """Return the exported model's metadata, as written beside the file."""
        metadata = model_metadata(settings.CLASSIFIER_MODEL_PATH)
        return [
            {
                "name": metadata["name"],
                "version": metadata["version"],
                "provider": self.name,
                "labels": list(LABELS),
                "input_size": metadata.get("input_size", [INPUT_SIZE, INPUT_SIZE]),
                "sha256": metadata["sha256"],
            }
        ]
