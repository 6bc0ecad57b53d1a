"""Tasks that exist only for the tests, loaded by the test settings (CELERY_IMPORTS)."""

import structlog
from celery import shared_task

logger = structlog.get_logger("vantage.tests")


@shared_task(name="tests.record_execution")
def record_execution(marker: str) -> str:
    """Log the marker from inside whichever process runs the task."""
    logger.info("test_task_executed", marker=marker)
    return marker


@shared_task(bind=True, name="tests.flaky", max_retries=2, retry_backoff=1, retry_backoff_max=1)
def flaky(self, marker: str, failures: int) -> str:
    """Fail with a transient database error on the first `failures` attempts."""
    from django.db import OperationalError

    if self.request.retries < failures:
        raise OperationalError(f"simulated outage for {marker}")
    logger.info("test_task_executed", marker=marker, attempt=self.request.retries + 1)
    return marker
