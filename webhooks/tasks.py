"""Webhooks' Celery tasks: thin entry points to the delivery service."""

from __future__ import annotations

from celery import shared_task

from webhooks.services.deliveries import deliveries_due_enqueue, delivery_attempt, log_purge


@shared_task(name="webhooks.delivery_attempt", acks_late=True, reject_on_worker_lost=True)
def delivery_attempt_task(delivery_id: str) -> str:
    """Make one attempt of a delivery; its retries are scheduled by the service, not Celery."""
    return delivery_attempt(delivery_id)


@shared_task(name="webhooks.deliveries_due")
def deliveries_due_task() -> int:
    """Hand again the due deliveries: retries, lost messages, workers that died mid-attempt."""
    return deliveries_due_enqueue()


@shared_task(name="webhooks.log_purge")
def log_purge_task() -> int:
    """Delete events, deliveries and their log past the retention."""
    return log_purge()
