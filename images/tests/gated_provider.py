"""A classifier provider chosen through CLASSIFIER_PROVIDERS that a test holds mid-job.

Its first call waits until the test opens the gate and calls every image a
truck (or, with `first_refused`, fails for good); every later call answers at
once and calls every image a car, so a test can tell which attempt's result
was kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from PIL import Image

from classifier.categories import Classification, classification_from_probabilities
from classifier.errors import ProviderError
from classifier.providers.base import Provider

TRUCK, CAR = 555, 436  # ImageNet classes: fire engine, beach wagon


class GatedProvider(Provider):
    """Hold the first classification until `gate` is set; `entered` says it has begun."""

    name = "gated"
    entered = threading.Event()
    gate = threading.Event()
    calls = 0
    first_refused = False

    @classmethod
    def reset(cls) -> None:
        cls.entered, cls.gate, cls.calls = threading.Event(), threading.Event(), 0
        cls.first_refused = False

    def classify(self, images: Sequence[Image.Image]) -> list[Classification]:
        cls = type(self)
        cls.calls += 1
        first = cls.calls == 1
        if first:
            cls.entered.set()
            if not cls.gate.wait(timeout=60):
                raise ProviderError("the test never opened the gate", permanent=True)
            if cls.first_refused:
                raise ProviderError("the provider refused the image", permanent=True)
        probabilities = np.zeros(1000, dtype=np.float32)
        probabilities[TRUCK if first else CAR] = 1.0
        result = classification_from_probabilities(
            probabilities, threshold=0.3, provider=self.name, model="gated", processing_time_ms=1.0
        )
        return [result for _ in images]
