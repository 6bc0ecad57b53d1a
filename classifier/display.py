"""How the dashboard shows a classifier's labels and predictions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, its value as text, and its length in percent."""

    label: str
    value: str
    percent: float


def label_text(label: str) -> str:
    """Return a classifier label as people read it: "other_vehicle" -> "other vehicle"."""
    return label.replace("_", " ")


def prediction_bars(predictions: Iterable[Mapping[str, Any]]) -> list[Bar]:
    """Return a classification's predictions as bars, their length the confidence."""
    bars = []
    for prediction in predictions:
        confidence = max(0.0, min(1.0, float(prediction.get("confidence", 0.0))))
        bars.append(
            Bar(
                label_text(str(prediction.get("label", ""))),
                f"{confidence * 100:.1f}%",
                round(confidence * 100, 2),
            )
        )
    return bars
