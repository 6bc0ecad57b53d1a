"""Prometheus metrics of the platform (the /metrics view is in config.metrics_api)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ERRORS = Counter(
    "vantage_http_errors_total",
    "Error responses, by problem code and status.",
    ["code", "status"],
)
TASKS = Counter(
    "vantage_celery_tasks_total",
    "Celery tasks finished, by task name and final state.",
    ["task", "state"],
)
TASK_DURATION = Histogram(
    "vantage_celery_task_duration_seconds",
    "Time spent running a Celery task, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

AUDIT_EVENTS = Counter(
    "vantage_audit_events_total",
    "Audit events recorded (committed), by action and outcome.",
    ["action", "outcome"],
)
AUDIT_SINK_ENQUEUE_FAILURES = Counter(
    "vantage_audit_sink_enqueue_failures_total",
    "Committed audit events whose delivery to the sink could not be queued (broker down).",
)
