"""The classifier's periodic jobs: thin entry points that call the chain."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from classifier.chain import providers_probe


@shared_task(name="classifier.providers_probe")
def providers_probe_task() -> list[dict[str, Any]]:
    """Probe every classifier provider and return each one's outcome and health."""
    return [result.to_dict() for result in providers_probe()]
