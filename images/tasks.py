"""Images' Celery tasks: thin entry points that call the pipeline with a job id."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from images.errors import TransientJobError
from images.pipeline import job_run, jobs_requeue_stuck


@shared_task(
    name="images.job_run",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the job counts its own attempts
)
def job_run_task(self: Any, job_id: str, after_attempt: int | None = None) -> None:
    """Run one attempt of a job; a transient failure is retried with exponential backoff.

    The retry carries the attempt that failed, so it takes the job back at once
    even when that attempt could not put it back in the queue (the database was down).
    """
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    try:
        job_run(job_id, redelivered=redelivered, after_attempt=after_attempt)
    except TransientJobError as exc:
        failed = exc.attempt if exc.attempt is not None else after_attempt
        raise self.retry(
            exc=exc,
            countdown=2 ** min(self.request.retries, 6),
            kwargs={"after_attempt": failed},
        ) from exc


@shared_task(name="images.jobs_requeue_stuck")
def jobs_requeue_stuck_task() -> int:
    """Hand again the jobs whose message was lost or whose worker died."""
    return jobs_requeue_stuck()
