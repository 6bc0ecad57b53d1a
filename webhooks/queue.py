"""Handing a webhook delivery to the task queue, by the task's name: no import of the task."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from celery import current_app
from django.conf import settings

logger = structlog.get_logger("vantage.webhooks")

# The Celery task that makes one attempt of a delivery (webhooks/tasks.py).
DELIVERY_ATTEMPT_TASK = "webhooks.delivery_attempt"


def delivery_enqueue(delivery_id: uuid.UUID | str, *, countdown: float | None = None) -> bool:
    """Hand the delivery to the queue; False if the broker refused (the periodic check
    hands it again)."""
    options: dict[str, Any] = {"queue": settings.WEBHOOK_QUEUE} if settings.WEBHOOK_QUEUE else {}
    if countdown:
        options["countdown"] = countdown
    try:
        current_app.tasks[DELIVERY_ATTEMPT_TASK].apply_async(
            args=(str(delivery_id),), retry=False, **options
        )
    except Exception as exc:
        logger.warning(
            "webhook_enqueue_failed", delivery_id=str(delivery_id), error_type=type(exc).__name__
        )
        return False
    return True
