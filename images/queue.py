"""Handing a job to the task queue, by the task's name: no import of the task or its pipeline."""

from __future__ import annotations

import uuid

import structlog
from celery import current_app
from django.conf import settings

logger = structlog.get_logger("vantage.images")

# The Celery task that runs one attempt of a job (images/tasks.py).
JOB_RUN_TASK = "images.job_run"


def job_enqueue(job_id: uuid.UUID | str) -> bool:
    """Hand the job to the queue; False if the broker is unreachable (it is handed again later)."""
    try:
        options = {"queue": settings.JOB_QUEUE} if settings.JOB_QUEUE else {}
        current_app.tasks[JOB_RUN_TASK].apply_async(args=(str(job_id),), retry=False, **options)
    except Exception as exc:
        logger.warning("job_enqueue_failed", job_id=str(job_id), error_type=type(exc).__name__)
        return False
    return True
