"""Vehicle categories as groups of ImageNet classes, and the result of classifying one image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from classifier.imagenet_labels import IMAGENET_LABELS

NOT_VEHICLE = "not_vehicle"

# Each category's probability is the sum of its ImageNet classes' probabilities.
VEHICLE_CATEGORIES: dict[str, tuple[int, ...]] = {
    "car": (436, 468, 511, 609, 627, 661, 751, 817, 573, 575),
    "van": (656, 734, 407),
    "truck": (555, 569, 675, 717, 864, 867, 561, 803),
    "bus": (779, 874, 654),
    "motorcycle": (665, 670),
    "bicycle": (444, 671, 870, 880),
    "train": (466, 547, 565, 705, 820, 829),
    "boat": (403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914),
    "aircraft": (404, 405, 895, 908),
    "other_vehicle": (408, 586, 595, 603, 612, 730, 744, 757, 802, 812, 847, 866),
}
LABELS: tuple[str, ...] = (*VEHICLE_CATEGORIES, NOT_VEHICLE)
PREDICTIONS_SHOWN = 5
IMAGENET_SHOWN = 5

# One row per category, one column per ImageNet class: categories = probabilities @ MEMBERSHIP.T.
_MEMBERSHIP = np.zeros((len(VEHICLE_CATEGORIES), len(IMAGENET_LABELS)), dtype=np.float32)
for _row, _classes in enumerate(VEHICLE_CATEGORIES.values()):
    _MEMBERSHIP[_row, list(_classes)] = 1.0


@dataclass(frozen=True)
class Prediction:
    """A label and how confident the model is in it."""

    label: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Return the prediction as the API shows it."""
        return {"label": self.label, "confidence": round(self.confidence, 6)}


@dataclass(frozen=True)
class ImagenetPrediction:
    """One of the model's own ImageNet classes, by index and name, with its probability."""

    index: int
    label: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Return the class as the API shows it."""
        return {"index": self.index, "label": self.label, "confidence": round(self.confidence, 6)}


@dataclass(frozen=True)
class Classification:
    """What a provider concluded about one image.

    `predictions` ranks the vehicle categories and `not_vehicle` (their
    confidences add up to 1); `top_label` is the likeliest category when the
    image is a vehicle, else `not_vehicle`. `processing_time_ms` is the image's
    share of its batch's time.
    """

    is_vehicle: bool
    top_label: str
    predictions: tuple[Prediction, ...]
    vehicle_probability: float
    imagenet: tuple[ImagenetPrediction, ...]
    provider: str
    model: str
    processing_time_ms: float

    def to_dict(self) -> dict[str, Any]:
        """Return the classification as the API shows it (without the id a stored one gets)."""
        return {
            "is_vehicle": self.is_vehicle,
            "top_label": self.top_label,
            "predictions": [prediction.to_dict() for prediction in self.predictions],
            "vehicle_probability": round(self.vehicle_probability, 6),
            "imagenet": [prediction.to_dict() for prediction in self.imagenet],
            "provider": self.provider,
            "model": self.model,
            "processing_time_ms": round(self.processing_time_ms, 2),
        }


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Return the row-wise softmax of a batch of logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def classification_from_probabilities(
    probabilities: npt.NDArray[np.float32],
    *,
    threshold: float,
    provider: str,
    model: str,
    processing_time_ms: float,
) -> Classification:
    """Return the classification of one image from its 1000 ImageNet class probabilities."""
    categories = _MEMBERSHIP @ probabilities
    vehicle = float(min(1.0, categories.sum()))
    scores = dict(zip(VEHICLE_CATEGORIES, categories.tolist(), strict=True))
    scores[NOT_VEHICLE] = 1.0 - vehicle
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    is_vehicle = vehicle >= threshold
    best_vehicle = max(VEHICLE_CATEGORIES, key=scores.__getitem__)
    top = np.argsort(probabilities)[::-1][:IMAGENET_SHOWN]
    return Classification(
        is_vehicle=is_vehicle,
        top_label=best_vehicle if is_vehicle else NOT_VEHICLE,
        predictions=tuple(Prediction(label, score) for label, score in ranked[:PREDICTIONS_SHOWN]),
        vehicle_probability=vehicle,
        imagenet=tuple(
            ImagenetPrediction(int(index), IMAGENET_LABELS[index], float(probabilities[index]))
            for index in top
        ),
        provider=provider,
        model=model,
        processing_time_ms=processing_time_ms,
    )
