"""Prometheus metrics of the platform (the /metrics view is in config.metrics_api)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS_IN_FLIGHT = Gauge(
    "vantage_http_requests_in_flight",
    "Requests being handled right now, summed over the host's live web processes.",
    multiprocess_mode="livesum",
)
REDIS_POOL_CONNECTIONS = Gauge(
    "vantage_redis_pool_connections",
    "Connections of the cache's Redis connection pools, by state (in_use: lent to a "
    "command, idle: open and waiting), summed over the host's live processes.",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
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
