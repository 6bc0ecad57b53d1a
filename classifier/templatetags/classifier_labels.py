"""Template filters that show the classifier's labels by their one display name."""

from __future__ import annotations

from django import template

from classifier.labels import label_name as _label_name
from classifier.labels import percent_text, vehicle_rule

register = template.Library()


@register.filter
def label_name(label: str | None) -> str:
    """{{ image.label|label_name }}: "other_vehicle" -> "other vehicle"."""
    return _label_name(label) if label else ""


@register.filter
def probability(fraction: float | str | None) -> str:
    """{{ value|probability }}: 0.314 -> "31.4%"."""
    return percent_text(float(fraction)) if fraction not in (None, "") else ""


@register.simple_tag
def vehicle_rule_text() -> str:
    """{% vehicle_rule_text %}: "counted as a vehicle at 30% or more"."""
    return vehicle_rule()
