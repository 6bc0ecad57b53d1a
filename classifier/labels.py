"""How people read the classifier's answers: one display name per label, and the rule that
decides whether an image counts as a vehicle, said in the same words on every page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from classifier.categories import LABELS, NOT_VEHICLE

# Each label's one display name: pages, charts, filters and the upload page's script use it.
# A label is read with spaces for underscores, but for the one that is no vehicle at all.
LABEL_NAMES: dict[str, str] = {
    label: "not a vehicle" if label == NOT_VEHICLE else label.replace("_", " ") for label in LABELS
}


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, its value as text, and its length in percent."""

    label: str
    value: str
    percent: float
    # Where the bar's items are listed, if anywhere.
    url: str = ""


def label_name(label: str) -> str:
    """Return the label's display name: "other_vehicle" -> "other vehicle"."""
    return LABEL_NAMES.get(label, label.replace("_", " "))


def percent_text(fraction: float) -> str:
    """Return a probability as the pages write it: 0.314 -> "31.4%"."""
    return f"{max(0.0, min(1.0, fraction)) * 100:.1f}%"


def vehicle_threshold() -> float:
    """Return the vehicle probability from which an image counts as a vehicle."""
    return float(settings.CLASSIFIER_VEHICLE_THRESHOLD)


def vehicle_rule() -> str:
    """Return the rule that decides the verdict: "counted as a vehicle at 30% or more"."""
    return f"counted as a vehicle at {vehicle_threshold() * 100:g}% or more"


def category_bars(predictions: Iterable[Mapping[str, Any]]) -> list[Bar]:
    """Return the vehicle categories' bars, their length the probability.

    "not a vehicle" is left out: it is one minus the vehicle probability, which
    the verdict shows with its rule, and a bar of its own would seem to outvote it.
    """
    bars = []
    for prediction in predictions:
        label = str(prediction.get("label", ""))
        if label == NOT_VEHICLE:
            continue
        confidence = max(0.0, min(1.0, float(prediction.get("confidence", 0.0))))
        bars.append(Bar(label_name(label), percent_text(confidence), round(confidence * 100, 2)))
    return bars


def verdict(classification: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a page says about one classification: the verdict, the vehicle
    probability against its rule, and the categories' bars."""
    probability = float(classification.get("vehicle_probability", 0.0))
    return {
        "is_vehicle": bool(classification.get("is_vehicle")),
        "label": label_name(str(classification.get("top_label", ""))),
        "probability": percent_text(probability),
        "percent": round(max(0.0, min(1.0, probability)) * 100, 2),
        "threshold_percent": round(vehicle_threshold() * 100, 2),
        "rule": vehicle_rule(),
        "bars": category_bars(classification.get("predictions", [])),
    }


def labels_for_script() -> dict[str, Any]:
    """Return the display names and the rule for the upload page's script."""
    return {
        "names": LABEL_NAMES,
        "not_vehicle": NOT_VEHICLE,
        "rule": vehicle_rule(),
        "threshold": vehicle_threshold(),
    }
