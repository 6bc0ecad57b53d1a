"""The Celery app: `celery -A config worker` and `celery -A config beat`.

Configuration comes from Django settings under the CELERY_ namespace. Tasks
carry the request id (and trace id) of the request that enqueued them, so a
job's log lines join the request's.
"""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from celery import Celery, Task, signals
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from config import filesystem_broker
from config.request_context import SYSTEM, ClientInfo, begin_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = structlog.get_logger("vantage.tasks")

# Errors that say "try again later", not "this job is wrong".
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    ConnectionError,
    TimeoutError,
)

# Message headers that carry the log context from the enqueuing request.
CONTEXT_HEADERS = ("request_id", "trace_id")


class BrokerCoolingDown(BrokerOperationalError):
    """Not sent: a publish to the broker timed out moments ago, so it is left alone a while."""


# When a publish of this process last timed out, plus the cooldown.
_broker_failed_until = [0.0]


def timed_out(exc: BaseException) -> bool:
    """Tell whether `exc` is, or was caused by, a timeout (the peer hangs rather than refuses)."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TimeoutError | RedisTimeoutError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class VantageTask(Task):
    """Default task class: retried with capped, jittered backoff on transient errors only."""

    autoretry_for = TRANSIENT_ERRORS
    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    acks_late = True
    reject_on_worker_lost = True

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        """Publish as Celery does; fail at once while the broker's last publish timed out.

        A hung broker makes each publish wait for the socket timeout: after one
        timeout this process does not try it again for `BROKER_COOLDOWN_SECONDS`.
        """
        from django.conf import settings

        if time.monotonic() < _broker_failed_until[0]:
            raise BrokerCoolingDown("a publish to the broker timed out moments ago; not tried")
        try:
            return super().apply_async(*args, **kwargs)
        except Exception as exc:
            if timed_out(exc):
                _broker_failed_until[0] = time.monotonic() + settings.BROKER_COOLDOWN_SECONDS
                logger.warning(
                    "broker_cooling_down",
                    error_type=type(exc).__name__,
                    seconds=settings.BROKER_COOLDOWN_SECONDS,
                )
            raise


filesystem_broker.register()
app = Celery("vantage", task_cls=VantageTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _keep_django_logging(**_kwargs: Any) -> None:
    """Leave logging as Django's LOGGING set it up, so worker lines are JSON too."""


@signals.before_task_publish.connect
def _attach_log_context(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    if headers is None:
        return
    context = structlog.contextvars.get_contextvars()
    for name in CONTEXT_HEADERS:
        if context.get(name) and name not in headers:
            headers[name] = context[name]


@signals.task_prerun.connect
def _bind_log_context(task: Task | None = None, task_id: str = "", **_kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()
    # A task acts as the system unless its service names another actor.
    begin_context(client=ClientInfo(), actor=SYSTEM)
    if task is None:
        return
    context = {name: getattr(task.request, name, None) for name in CONTEXT_HEADERS}
    structlog.contextvars.bind_contextvars(
        task_id=task_id,
        task_name=task.name,
        **{name: value for name, value in context.items() if value},
    )
    task.request.vantage_started = time.perf_counter()  # type: ignore[attr-defined]
    logger.info("task_started", attempt=task.request.retries + 1)


@signals.task_postrun.connect
def _log_task_finished(task: Task | None = None, state: str | None = None, **_kwargs: Any) -> None:
    # Imported here: prometheus_client must load after settings chose its
    # multiprocess directory, and this module loads before settings do.
    from config import metrics

    started = getattr(task.request, "vantage_started", None) if task is not None else None
    duration = time.perf_counter() - started if started is not None else None
    if task is not None and duration is not None:
        metrics.TASKS.labels(task=task.name, state=state or "UNKNOWN").inc()
        metrics.TASK_DURATION.labels(task=task.name).observe(duration)
    logger.info(
        "task_finished",
        state=state,
        duration_ms=round(duration * 1000, 2) if duration is not None else None,
    )
    structlog.contextvars.clear_contextvars()


@signals.task_failure.connect
def _log_task_failure(exception: BaseException | None = None, **_kwargs: Any) -> None:
    logger.error("task_failed", error_type=type(exception).__name__ if exception else None)
